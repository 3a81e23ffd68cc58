//! API keys as authentication last read them, for a few seconds: the per-request database read
//! disappears from the hot path. Revoking a key or deactivating a user clears what this node
//! holds at once; other nodes see the change within the time to live.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lore_core::model::Id;
use lore_core::store::ApiKeyRecord;

pub struct KeyCache {
    entries: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
    ttl: Duration,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache { entries: Mutex::new(HashMap::new()), ttl }
    }

    pub fn get(&self, key_hash: &str) -> Option<ApiKeyRecord> {
        let map = self.entries.lock().ok()?;
        map.get(key_hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(r, _)| r.clone())
    }

    pub fn put(&self, key_hash: String, record: ApiKeyRecord) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= 10_000 {
                let ttl = self.ttl;
                map.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            map.insert(key_hash, (record, Instant::now()));
        }
    }

    pub fn forget_key(&self, key_id: Id) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (r, _)| r.key.id != key_id);
        }
    }

    pub fn forget_user(&self, user_id: Id) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (r, _)| r.user.id != user_id);
        }
    }
}
