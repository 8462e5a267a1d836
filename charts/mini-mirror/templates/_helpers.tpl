{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "mini-mirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart>, or <release> when it already contains the chart
name; truncated to 63 characters.
*/}}
{{- define "mini-mirror.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "mini-mirror.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (never add version labels here).
*/}}
{{- define "mini-mirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mini-mirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels of every resource.
*/}}
{{- define "mini-mirror.labels" -}}
helm.sh/chart: {{ include "mini-mirror.chart" . }}
{{ include "mini-mirror.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mini-mirror.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mini-mirror
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "mini-mirror.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mini-mirror.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "mini-mirror.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Image reference from a {repository, tag, digest} dict: repo@digest when a digest is given,
else repo:tag. Call as (include "mini-mirror.imageRef" (dict "image" .Values.image "defaultTag" "x")).
*/}}
{{- define "mini-mirror.imageRef" -}}
{{- $img := .image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .defaultTag $img.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the nginx configuration ConfigMap.
*/}}
{{- define "mini-mirror.nginxConfigName" -}}
{{- printf "%s-nginx" (include "mini-mirror.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the apt-check (helm test script) ConfigMap.
*/}}
{{- define "mini-mirror.aptCheckName" -}}
{{- printf "%s-apt-check" (include "mini-mirror.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The nginx.conf of the override ConfigMap: nginxConfig.content, else the chart's copy of the
project's nginx/mini-mirror.conf.
*/}}
{{- define "mini-mirror.nginxConf" -}}
{{- if .Values.nginxConfig.content }}
{{- .Values.nginxConfig.content }}
{{- else }}
{{- .Files.Get "files/nginx.conf" }}
{{- end }}
{{- end }}

{{/*
In-cluster base URL of the service (what the helm test uses).
*/}}
{{- define "mini-mirror.serviceUrl" -}}
{{- $port := int .Values.service.port }}
{{- if eq $port 80 }}
{{- printf "http://%s.%s.svc" (include "mini-mirror.fullname" .) .Release.Namespace }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "mini-mirror.fullname" .) .Release.Namespace $port }}
{{- end }}
{{- end }}

{{/*
Base URL for clients outside the pod network (nodes, builds): mirror.url, else the first
ingress host, else http://<NODE_IP>:<nodePort> for NodePort, else the service URL.
*/}}
{{- define "mini-mirror.clientUrl" -}}
{{- if .Values.mirror.url }}
{{- .Values.mirror.url | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $scheme := "http" }}
{{- range .Values.ingress.tls }}
{{- if has $host .hosts }}{{ $scheme = "https" }}{{ end }}
{{- end }}
{{- $path := "" }}
{{- with (first .Values.ingress.hosts).paths }}
{{- $path = (first .).path | trimSuffix "/" }}
{{- end }}
{{- printf "%s://%s%s" $scheme $host $path }}
{{- else if and (eq .Values.service.type "NodePort") .Values.service.nodePort }}
{{- printf "http://NODE_IP:%d" (int .Values.service.nodePort) }}
{{- else }}
{{- include "mini-mirror.serviceUrl" . }}
{{- end }}
{{- end }}

{{/*
Keyring file name on a client for a prefix: one prefix -> the name the README uses;
several -> one file per prefix.
*/}}
{{- define "mini-mirror.keyringFile" -}}
{{- $prefixes := list }}
{{- range .root.Values.mirror.sources }}{{ $prefixes = append $prefixes (trimAll "/" .prefix) }}{{ end }}
{{- if eq (len (uniq $prefixes)) 1 }}
{{- print "/usr/share/keyrings/mini-mirror-archive-keyring.gpg" }}
{{- else }}
{{- printf "/usr/share/keyrings/mini-mirror-%s-archive-keyring.gpg" (.prefix | trimAll "/" | replace "/" "-") }}
{{- end }}
{{- end }}
