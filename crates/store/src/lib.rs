//! The embedded, transactional store behind the control plane: named tables of key → bytes,
//! written in atomic batches. `RedbStore` is the durable implementation; `MemoryStore` is the fake.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        table: &'static str,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: &'static str,
        key: String,
    },
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database at {path}: {message}")]
    Open { path: String, message: String },
    #[error("state database read failed: {0}")]
    Read(String),
    #[error("state database write failed (nothing was applied): {0}")]
    Write(String),
}

/// A transactional key-value store: `commit` applies a batch all or nothing, durably.
pub trait Store: Send + Sync {
    /// Every (key, value) in `table`, in key order.
    fn load(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies all ops atomically; once this returns Ok the batch survives a crash.
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError>;
}

/// The durable store, one redb file.
pub struct RedbStore {
    db: redb::Database,
}

fn table(name: &'static str) -> redb::TableDefinition<'static, &'static str, &'static [u8]> {
    redb::TableDefinition::new(name)
}

impl RedbStore {
    /// Opens (or creates) the database file; recovers after a crash.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = redb::Database::create(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn load(&self, name: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        use redb::{ReadableTable, TableError};
        let tx = self
            .db
            .begin_read()
            .map_err(|e| StoreError::Read(e.to_string()))?;
        let t = match tx.open_table(table(name)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Read(e.to_string())),
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| StoreError::Read(e.to_string()))? {
            let (k, v) = item.map_err(|e| StoreError::Read(e.to_string()))?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        let w = |e: &dyn std::fmt::Display| StoreError::Write(e.to_string());
        let tx = self.db.begin_write().map_err(|e| w(&e))?;
        for op in ops {
            match op {
                Op::Put {
                    table: name,
                    key,
                    value,
                } => {
                    let mut t = tx.open_table(table(name)).map_err(|e| w(&e))?;
                    t.insert(key.as_str(), value.as_slice())
                        .map_err(|e| w(&e))?;
                }
                Op::Delete { table: name, key } => {
                    let mut t = tx.open_table(table(name)).map_err(|e| w(&e))?;
                    t.remove(key.as_str()).map_err(|e| w(&e))?;
                }
            }
        }
        // Dropping `tx` without commit aborts it, so an error above applies nothing.
        tx.commit().map_err(|e| w(&e))
    }
}

/// In-memory store for tests of code above the store.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>>,
}

impl Store for MemoryStore {
    fn load(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tables = self
            .tables
            .lock()
            .map_err(|e| StoreError::Read(e.to_string()))?;
        Ok(tables
            .get(table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut tables = self
            .tables
            .lock()
            .map_err(|e| StoreError::Write(e.to_string()))?;
        for op in ops {
            match op {
                Op::Put { table, key, value } => {
                    tables
                        .entry(table)
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Op::Delete { table, key } => {
                    tables.entry(table).or_default().remove(key);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(store: &dyn Store) {
        assert!(store.load("t").unwrap().is_empty());
        store
            .commit(&[
                Op::Put {
                    table: "t",
                    key: "b".into(),
                    value: b"2".to_vec(),
                },
                Op::Put {
                    table: "t",
                    key: "a".into(),
                    value: b"1".to_vec(),
                },
                Op::Put {
                    table: "u",
                    key: "x".into(),
                    value: b"9".to_vec(),
                },
            ])
            .unwrap();
        assert_eq!(
            store.load("t").unwrap(),
            vec![
                ("a".to_string(), b"1".to_vec()),
                ("b".to_string(), b"2".to_vec())
            ]
        );
        store
            .commit(&[Op::Delete {
                table: "t",
                key: "a".into(),
            }])
            .unwrap();
        assert_eq!(
            store.load("t").unwrap(),
            vec![("b".to_string(), b"2".to_vec())]
        );
        assert_eq!(store.load("u").unwrap().len(), 1);
    }

    #[test]
    fn memory_store_meets_the_contract() {
        contract(&MemoryStore::default());
    }

    #[test]
    fn redb_store_meets_the_contract_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            contract(&s);
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.load("t").unwrap(), vec![("b".to_string(), b"2".to_vec())]);
    }
}
