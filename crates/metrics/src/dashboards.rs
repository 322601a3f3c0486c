//! Dashboards: named JSON bodies (validated to be a JSON object with a `widgets` array), kept in
//! a JSON file written atomically.

use crate::alarm::manager::write_atomically;
use crate::alarm::PersistError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One stored dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Its name.
    pub name: String,
    /// The body as given (JSON text).
    pub body: String,
    /// When it last changed, seconds since the epoch.
    pub last_modified: f64,
}

/// Why a dashboard operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The body or name is invalid; every problem is listed.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// No dashboard has this name.
    #[error("dashboard {0} does not exist")]
    NotFound(String),
    /// The change could not be saved.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// The dashboards; cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Dashboards {
    path: PathBuf,
    all: Arc<Mutex<BTreeMap<String, Dashboard>>>,
}

/// Checks a dashboard name and body, collecting every problem.
pub fn validate(name: &str, body: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(format!(
            "DashboardName: 1 to 255 of A-Z a-z 0-9 - _ was expected, found '{name}'"
        ));
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Err(e) => errors.push(format!("DashboardBody: JSON was expected: {e}")),
        Ok(v) => {
            match v.get("widgets") {
                Some(serde_json::Value::Array(widgets)) => {
                    for (i, w) in widgets.iter().enumerate() {
                        if !w.is_object() {
                            errors.push(format!(
                                "DashboardBody.widgets[{i}]: an object was expected"
                            ));
                        } else if !w.get("type").is_some_and(|t| t.is_string()) {
                            errors.push(format!("DashboardBody.widgets[{i}].type: a string was expected, found none"));
                        }
                    }
                }
                Some(_) => errors.push("DashboardBody.widgets: an array was expected".into()),
                None => errors.push(
                    "DashboardBody: an object with a widgets array was expected, found no widgets"
                        .into(),
                ),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl Dashboards {
    /// Opens (or starts empty) the dashboards file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Dashboards, PersistError> {
        let path = path.as_ref().to_path_buf();
        let all = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| PersistError::Parse {
                path: path.display().to_string(),
                error,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(PersistError::Io {
                    path: path.display().to_string(),
                    error,
                })
            }
        };
        Ok(Dashboards {
            path,
            all: Arc::new(Mutex::new(all)),
        })
    }

    fn save(&self, all: &BTreeMap<String, Dashboard>) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec_pretty(all).map_err(|error| PersistError::Parse {
            path: self.path.display().to_string(),
            error,
        })?;
        write_atomically(&self.path, &bytes).map_err(|error| PersistError::Io {
            path: self.path.display().to_string(),
            error,
        })
    }

    /// Creates or replaces a dashboard (PutDashboard).
    pub fn put(&self, name: &str, body: &str, now: f64) -> Result<(), DashboardError> {
        validate(name, body).map_err(DashboardError::Invalid)?;
        // The file is written under the lock: dashboard changes are rare and must not reorder.
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(
            name.to_string(),
            Dashboard {
                name: name.to_string(),
                body: body.to_string(),
                last_modified: now,
            },
        );
        self.save(&all)?;
        Ok(())
    }

    /// One dashboard (GetDashboard).
    pub fn get(&self, name: &str) -> Result<Dashboard, DashboardError> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.get(name)
            .cloned()
            .ok_or_else(|| DashboardError::NotFound(name.to_string()))
    }

    /// Dashboards whose names start with `prefix` (ListDashboards).
    pub fn list(&self, prefix: Option<&str>) -> Vec<Dashboard> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.values()
            .filter(|d| prefix.is_none_or(|p| d.name.starts_with(p)))
            .cloned()
            .collect()
    }

    /// Deletes dashboards (DeleteDashboards): all or none.
    pub fn delete(&self, names: &[String]) -> Result<(), DashboardError> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(missing) = names.iter().find(|n| !all.contains_key(*n)) {
            return Err(DashboardError::NotFound(missing.clone()));
        }
        for n in names {
            all.remove(n);
        }
        self.save(&all)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_validated_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        let d = Dashboards::open(&path).unwrap();
        let body = r#"{"widgets":[{"type":"text","properties":{"markdown":"hi"}}]}"#;
        d.put("main", body, 5.0).unwrap();
        let bad = d.put("bad name", "{\"nope\":1}", 5.0).unwrap_err();
        let text = bad.to_string();
        assert!(
            text.contains("DashboardName") && text.contains("widgets"),
            "{text}"
        );
        assert!(matches!(
            d.put("x", "not json", 1.0),
            Err(DashboardError::Invalid(_))
        ));
        assert!(matches!(
            d.put("x", r#"{"widgets":[1]}"#, 1.0),
            Err(DashboardError::Invalid(_))
        ));
        let d = Dashboards::open(&path).unwrap();
        assert_eq!(d.get("main").unwrap().body, body);
        assert_eq!(d.list(Some("ma")).len(), 1);
        assert_eq!(d.list(Some("zz")).len(), 0);
        assert!(
            matches!(d.delete(&["main".into(), "ghost".into()]), Err(DashboardError::NotFound(n)) if n == "ghost")
        );
        d.delete(&["main".into()]).unwrap();
        assert!(matches!(d.get("main"), Err(DashboardError::NotFound(_))));
    }
}
