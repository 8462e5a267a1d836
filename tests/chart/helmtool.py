#!/usr/bin/env python3
"""Helm's own Go SDK (PyPI `helm-python-sdk`, no helm binary) for tests/chart/run.sh.

  helmtool.py lint CHART [VALUES.yaml]          helm lint --strict (+ values.schema.json)
  helmtool.py render CHART VALUES.yaml|- OUTDIR  helm template: OUTDIR/manifest.yaml (the
                                                 install --dry-run=client manifest followed by
                                                 the test hooks), OUTDIR/notes.txt
  helmtool.py reject CHART VALUES.yaml          exit 0 only when lint AND install reject it
  helmtool.py assert default|all OUTDIR         what the rendered manifest and notes must hold
                                                 for the defaults / tests/chart/values-all.yaml
  helmtool.py extract-test MANIFEST OUTDIR      from a rendered manifest: the test Pod's
                                                 ConfigMap files (OUTDIR/files/<key>), its
                                                 mount path, command, env and user
                                                 (OUTDIR/pod.env, shell-quoted assignments)

Exit status: 0 on success, 1 on a failed check, 2 on usage errors.
"""
import json
import os
import shlex
import sys

import yaml

import helm_python as helm

RELEASE = "ci"
NAMESPACE = "default"


def load_values(path):
    if path in (None, ""):
        return {}
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    values = yaml.safe_load(text)
    return values or {}


def cmd_lint(chart, values_path=None):
    values = load_values(values_path)
    report = helm.lint(chart, values, strict=True, namespace=NAMESPACE)
    bad = False
    for m in report.get("messages", []):
        sev = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}.get(m.get("severity"), "?")
        print(f"[{sev}] {m.get('path')}: {m.get('error')}")
        # --strict: warnings count as failures, like `helm lint --strict`.
        if m.get("severity", 0) >= 2:
            bad = True
    for e in report.get("errors", []):
        print(f"[ERROR] {e}")
        bad = True
    print(f"linted {report.get('total_charts_linted')} chart(s): {'FAILED' if bad else 'ok'}")
    return 1 if bad else 0


def render(chart, values):
    """(manifest, notes): `helm template` = the install manifest + the hooks (tests)."""
    cfg = helm.Config(namespace=NAMESPACE, storage_driver="memory")
    rel = cfg.install(chart, RELEASE, values, dry_run="client", namespace=NAMESPACE)
    manifest = rel["manifest"]
    # The release manifest holds no hooks; `helm template` prints them too. Take them from an
    # offline render of the same chart and values.
    loaded = helm.Chart.load(chart)
    files = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    hooks = []
    for path in sorted(files):
        text = files[path]
        if not path.endswith((".yaml", ".yml")) or not text.strip():
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and "helm.sh/hook" in (doc.get("metadata", {}).get("annotations") or {}):
                hooks.append(f"---\n# Source: {path}\n{text.strip()}\n")
                break
    if not manifest.startswith("---"):
        manifest = "---\n" + manifest
    return manifest.rstrip("\n") + "\n" + "".join(hooks), rel.get("notes", "")


def cmd_render(chart, values_path, outdir):
    values = load_values(values_path)
    manifest, notes = render(chart, values)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "manifest.yaml"), "w", encoding="utf-8") as f:
        f.write(manifest)
    with open(os.path.join(outdir, "notes.txt"), "w", encoding="utf-8") as f:
        f.write(notes)
    kinds = [f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(manifest) if d]
    print("rendered: " + " ".join(kinds))
    return 0


def cmd_reject(chart, values_path):
    values = load_values(values_path)
    report = helm.lint(chart, values, strict=True, namespace=NAMESPACE)
    lint_errors = [m["error"] for m in report.get("messages", []) if m.get("severity", 0) >= 3]
    lint_errors += report.get("errors", [])
    install_error = None
    try:
        render(chart, values)
    except helm.HelmError as e:  # the schema check fails the install
        install_error = str(e)
    for e in dict.fromkeys(e.strip() for e in lint_errors):
        print("lint: " + e.replace("\n", " "))
    print("install: " + (install_error or "ACCEPTED").strip().replace("\n", " "))
    schema_hit = any("schema" in e.lower() for e in lint_errors) and install_error \
        and "schema" in install_error.lower()
    return 0 if schema_hit else 1


def _docs(outdir):
    docs = [d for d in yaml.safe_load_all(open(os.path.join(outdir, "manifest.yaml"), encoding="utf-8")) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}, open(
        os.path.join(outdir, "notes.txt"), encoding="utf-8").read()


def cmd_assert(profile, outdir):
    objs, notes = _docs(outdir)
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    def one(kind):
        found = [o for k, o in objs.items() if k.startswith(kind + "/")]
        need(len(found) == 1, f"exactly one {kind} (found {len(found)})")
        return found[0] if found else {}

    dep = one("Deployment")
    pod = dep.get("spec", {}).get("template", {})
    spec = pod.get("spec", {})
    ctr = (spec.get("containers") or [{}])[0]
    sel = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
    labels = dep.get("metadata", {}).get("labels", {})
    for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
              "app.kubernetes.io/managed-by", "helm.sh/chart"):
        need(k in labels, f"Deployment label {k}")
    need(set(sel) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}, f"selector labels {sel}")
    need(all(pod.get("metadata", {}).get("labels", {}).get(k) == v for k, v in sel.items()),
         "pod labels match the selector")
    need(dep.get("spec", {}).get("strategy", {}).get("type") == "RollingUpdate", "RollingUpdate strategy")
    psc, csc = spec.get("securityContext", {}), ctr.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 101, "pod runAsNonRoot, runAsUser 101")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccomp RuntimeDefault")
    need(csc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
    need(csc.get("capabilities", {}).get("drop") == ["ALL"], "all capabilities dropped")
    need(csc.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
    need(csc.get("runAsNonRoot") is True, "container runAsNonRoot")
    mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for path in ("/tmp", "/var/cache/nginx", "/var/run"):
        need(path in mounts and "emptyDir" in vols.get(mounts[path]["name"], {}), f"emptyDir at {path}")
    for probe in ("livenessProbe", "readinessProbe"):
        hg = ctr.get(probe, {}).get("httpGet", {})
        need(hg.get("path") == "/healthz" and hg.get("port") in ("http", 8080), f"{probe} on /healthz")
    need(any(p.get("containerPort") == 8080 and p.get("name") == "http" for p in ctr.get("ports", [])),
         "container port 8080 named http")
    need("checksum/nginx-config" in pod.get("metadata", {}).get("annotations", {}), "config checksum annotation")
    tsc = spec.get("topologySpreadConstraints", [])
    need(any(t.get("topologyKey") == "kubernetes.io/hostname"
             and t.get("labelSelector", {}).get("matchLabels") == sel for t in tsc),
         "replicas spread across nodes (topologySpreadConstraints on the pod labels)")
    need("resources" in ctr and ctr["resources"].get("requests"), "resource requests")
    svc = one("Service")
    test = [o for o in objs.values() if o["kind"] == "Pod"
            and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    need(len(test) == 1, "one helm test Pod")
    text = open(os.path.join(outdir, "manifest.yaml"), encoding="utf-8").read()
    need("trusted=yes" not in text and "allow-insecure" not in text,
         "no trusted=yes / allow-insecure anywhere")
    need("signed-by=" in text and "--error-on=any" in text, "test script uses signed-by= and --error-on=any")
    need("deb [signed-by=/usr/share/keyrings/" in notes, "NOTES: apt source line with signed-by")
    need("curl -fsSL " in notes and "/mini-mirror-archive-keyring.gpg -o /usr/share/keyrings/" in notes,
         "NOTES: keyring download command")

    if profile == "default":
        need(dep["spec"].get("replicas") == 2, "2 replicas by default")
        need(svc["spec"]["type"] == "ClusterIP", "ClusterIP service by default")
        need("/etc/nginx/nginx.conf" not in mounts, "no nginx.conf override by default")
        for kind in ("Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
            need(not any(k.startswith(kind + "/") for k in objs), f"no {kind} by default")
        need(test and test[0]["spec"]["containers"][0]["image"] == "debian:bookworm-slim",
             "test image debian:bookworm-slim by default")
        need("deb [signed-by=/usr/share/keyrings/mini-mirror-archive-keyring.gpg] "
             "http://ci-mini-mirror.default.svc/debian bookworm main" in notes, "NOTES: the default source line")
        need("curl -fsSL http://ci-mini-mirror.default.svc/debian/mini-mirror-archive-keyring.gpg "
             "-o /usr/share/keyrings/mini-mirror-archive-keyring.gpg" in notes, "NOTES: the default keyring command")
    elif profile == "all":
        need("replicas" not in dep["spec"], "no Deployment replicas when the HPA is on")
        need(ctr.get("image", "").endswith("@sha256:" + "0123456789abcdef" * 4), "image by digest")
        need(spec.get("imagePullSecrets") == [{"name": "regcred"}], "imagePullSecrets")
        need(svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0].get("nodePort") == 30080,
             "NodePort 30080")
        ing = one("Ingress")
        need(ing.get("spec", {}).get("ingressClassName") == "nginx", "ingress className")
        need(ing.get("spec", {}).get("tls", [{}])[0].get("secretName") == "apt-mirror-tls", "ingress TLS secret")
        pdb = one("PodDisruptionBudget")
        need(pdb.get("apiVersion") == "policy/v1" and pdb.get("spec", {}).get("selector", {}).get("matchLabels") == sel,
             "PDB policy/v1 on the pods")
        hpa = one("HorizontalPodAutoscaler")
        need(hpa.get("apiVersion") == "autoscaling/v2" and len(hpa.get("spec", {}).get("metrics", [])) == 2,
             "HPA autoscaling/v2 with CPU and memory")
        m = mounts.get("/etc/nginx/nginx.conf", {})
        need(m.get("subPath") == "nginx.conf", "nginx.conf mounted via subPath")
        cm = vols.get(m.get("name"), {}).get("configMap", {}).get("name")
        need(cm and f"ConfigMap/{cm}" in objs and "listen 8080;" in objs[f"ConfigMap/{cm}"]["data"]["nginx.conf"],
             "the nginx ConfigMap holds the override")
        need("tolerations" in spec and "nodeSelector" in spec and "affinity" in spec,
             "nodeSelector, tolerations, affinity")
        need("https://apt-mirror.example.internal/ubuntu jammy main universe" in notes, "NOTES: ingress URL, 3 sources")
        need("sha256sum -c" in notes, "NOTES: keyring SHA256 check")
    else:
        print(f"unknown profile {profile}")
        return 2
    for p in problems:
        print(f"missing: {p}")
    print(f"{profile}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_extract_test(manifest_path, outdir):
    docs = [d for d in yaml.safe_load_all(open(manifest_path, encoding="utf-8")) if d]
    pods = [d for d in docs if d["kind"] == "Pod"
            and (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    if len(pods) != 1:
        print(f"expected one test Pod, found {len(pods)}")
        return 1
    pod = pods[0]
    spec = pod["spec"]
    ctr = spec["containers"][0]
    env = {e["name"]: e.get("value", "") for e in ctr.get("env", [])}
    # The ConfigMap volume(s) of the pod and where they are mounted.
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
    os.makedirs(os.path.join(outdir, "files"), exist_ok=True)
    mount_lines = []
    for vol in spec.get("volumes", []):
        if "configMap" not in vol:
            continue
        name = vol["configMap"]["name"]
        if name not in cms:
            print(f"the test Pod mounts ConfigMap {name}, which the chart does not render")
            return 1
        d = os.path.join(outdir, "files", vol["name"])
        os.makedirs(d, exist_ok=True)
        for key, val in cms[name].get("data", {}).items():
            with open(os.path.join(d, key), "w", encoding="utf-8") as f:
                f.write(val)
        mount_lines.append(f"{vol['name']}={mounts[vol['name']]}")
    sc = dict(spec.get("securityContext") or {})
    sc.update(ctr.get("securityContext") or {})
    with open(os.path.join(outdir, "pod.env"), "w", encoding="utf-8") as f:
        f.write(f"POD_NAME={shlex.quote(pod['metadata']['name'])}\n")
        f.write(f"POD_IMAGE={shlex.quote(ctr['image'])}\n")
        f.write(f"POD_COMMAND=({' '.join(shlex.quote(c) for c in ctr.get('command', []) + ctr.get('args', []))})\n")
        f.write(f"POD_ENV=({' '.join(shlex.quote(f'{k}={v}') for k, v in env.items())})\n")
        f.write(f"POD_MOUNTS=({' '.join(shlex.quote(m) for m in mount_lines)})\n")
        f.write(f"POD_RUN_AS_USER={int(sc.get('runAsUser', 0))}\n")
        f.write(f"POD_RUN_AS_GROUP={int(sc.get('runAsGroup', sc.get('runAsUser', 0)))}\n")
        f.write(f"POD_READ_ONLY_ROOT={'1' if sc.get('readOnlyRootFilesystem') else '0'}\n")
        f.write(f"POD_HOOK_ANNOTATIONS={shlex.quote(json.dumps(pod['metadata'].get('annotations', {}), sort_keys=True))}\n")
    print(f"test pod {pod['metadata']['name']}: image {ctr['image']}, command {ctr.get('command')}, "
          f"MIRROR_URL={env.get('MIRROR_URL')}, mounts {mount_lines}")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "lint" and len(args) in (1, 2):
            return cmd_lint(*args)
        if cmd == "render" and len(args) == 3:
            return cmd_render(*args)
        if cmd == "reject" and len(args) == 2:
            return cmd_reject(*args)
        if cmd == "assert" and len(args) == 2:
            return cmd_assert(*args)
        if cmd == "extract-test" and len(args) == 2:
            return cmd_extract_test(*args)
    except helm.HelmError as e:
        print(f"helm: {type(e).__name__}: {e}")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
