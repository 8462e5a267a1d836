//! The name tables of a universe: package ids by (provided) name, over copies of the
//! names made while the parser had the text at hand.

use super::PkgId;

/// Package ids by name. The names are copies (a few megabytes for a whole archive)
/// made while the parser had the text at hand: lookups and growth never read the
/// index texts back in after their pages were handed back to the kernel.
#[derive(Default)]
pub(super) struct NameTable {
    names: String,
    table: hashbrown::HashTable<(NameRef, Vec<PkgId>)>,
}

/// A name in a [`NameTable`]'s (or a parser run's) copy of names.
#[derive(Clone, Copy)]
pub(super) struct NameRef {
    pub(super) hash: u64,
    at: u32,
    len: u32,
}

impl NameRef {
    pub(super) fn of<'n>(&self, names: &'n str) -> &'n str {
        &names[self.at as usize..self.at as usize + self.len as usize]
    }
}

fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

/// Copy `name` to the end of `names`.
pub(super) fn copy_name(names: &mut String, name: &str) -> NameRef {
    let at = names.len() as u32;
    names.push_str(name);
    NameRef {
        hash: name_hash(name),
        at,
        len: name.len() as u32,
    }
}

impl NameTable {
    pub(super) fn with_capacity(entries: usize) -> NameTable {
        NameTable {
            names: String::new(),
            table: hashbrown::HashTable::with_capacity(entries),
        }
    }

    /// The ids of `name` (which is at `key` in `run_names`, a parser run's copy).
    pub(super) fn entry(&mut self, key: NameRef, run_names: &str) -> &mut Vec<PkgId> {
        let name = key.of(run_names);
        let names = &self.names;
        let entry = self.table.entry(
            key.hash,
            |(k, _)| k.hash == key.hash && k.of(names) == name,
            |(k, _)| k.hash,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => &mut e.into_mut().1,
            hashbrown::hash_table::Entry::Vacant(e) => {
                let at = self.names.len() as u32;
                self.names.push_str(name);
                let key = NameRef { at, ..key };
                &mut e.insert((key, Vec::new())).into_mut().1
            }
        }
    }

    /// Every name's ids.
    pub(super) fn ids(&self) -> impl Iterator<Item = &Vec<PkgId>> {
        self.table.iter().map(|(_, ids)| ids)
    }

    /// Every name's ids, to reorder them.
    pub(super) fn ids_mut(&mut self) -> impl Iterator<Item = &mut Vec<PkgId>> {
        self.table.iter_mut().map(|(_, ids)| ids)
    }

    pub(super) fn get(&self, name: &str) -> &[PkgId] {
        let hash = name_hash(name);
        self.table
            .find(hash, |(k, _)| k.hash == hash && k.of(&self.names) == name)
            .map_or(&[], |(_, ids)| ids.as_slice())
    }
}
