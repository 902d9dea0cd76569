//! Interned names: each distinct stream name or event type is stored once and known by a dense
//! `u32` id, so the index can describe an event in a few bytes instead of two strings.
//!
//! Ids are never reused or removed: the log is append-only and so is the set of names in it.

use std::collections::HashMap;
use std::sync::Arc;

/// A dense id of an interned name: the index into [`Names`]' list.
pub type NameId = u32;

/// A set of interned names.
#[derive(Debug, Default)]
pub struct Names {
    /// The names in the order they were first seen: `by_id[id]` is name `id`.
    by_id: Vec<Arc<str>>,
    /// The id of each name. Shares its keys' allocations with `by_id`.
    ids: HashMap<Arc<str>, NameId>,
}

impl Names {
    /// The id of `name`, if it was interned.
    pub fn id(&self, name: &str) -> Option<NameId> {
        self.ids.get(name).copied()
    }

    /// The id of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.id(name) {
            return id;
        }
        // Four billion distinct names would take hundreds of GiB of index before this fails.
        let id = NameId::try_from(self.by_id.len()).expect("fewer than 2^32 distinct names");
        let name: Arc<str> = Arc::from(name);
        self.by_id.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    /// The name with id `id`; ids come from this set, so it exists.
    pub fn name(&self, id: NameId) -> &Arc<str> {
        &self.by_id[id as usize]
    }

    /// The shared copy of `name` when it is interned, a new one otherwise.
    pub fn shared(&self, name: &str) -> Arc<str> {
        match self.ids.get_key_value(name) {
            Some((name, _)) => name.clone(),
            None => Arc::from(name),
        }
    }
}
