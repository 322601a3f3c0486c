//! The AWS query protocol's input: form-urlencoded pairs whose keys nest with dots
//! (`Conditions.member.1.PathPatternConfig.Values.member.2=/api/*`), read back as a tree.

use berth_model::FieldErrors;
use std::collections::BTreeMap;

/// Most dot-separated segments a key may have; AWS's deepest keys have fewer than ten.
pub const MAX_KEY_SEGMENTS: usize = 24;

/// Refuses keys nested deeper than [`MAX_KEY_SEGMENTS`] (the tree is walked recursively).
pub fn check_key_depth(key: &str) -> Result<(), String> {
    if key.split('.').nth(MAX_KEY_SEGMENTS).is_some() {
        let shown: String = key.chars().take(60).collect();
        return Err(format!(
            "{shown}...: keys nested deeper than {MAX_KEY_SEGMENTS} levels are not accepted"
        ));
    }
    Ok(())
}

/// One node of the parameter tree: a value, children, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    value: Option<String>,
    children: BTreeMap<String, Params>,
}

impl Params {
    /// Parses a form-urlencoded body into a tree keyed by the dot-separated key segments.
    pub fn parse(body: &[u8]) -> Result<Params, String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| format!("the body is not form-urlencoded: {e}"))?;
        let mut root = Params::default();
        for (key, value) in pairs {
            check_key_depth(&key)?;
            let mut node = &mut root;
            for segment in key.split('.') {
                node = node.children.entry(segment.to_string()).or_default();
            }
            node.value = Some(value);
        }
        Ok(root)
    }

    /// The child node at a dotted path (`ForwardConfig.TargetGroupStickinessConfig`).
    pub fn get(&self, path: &str) -> Option<&Params> {
        path.split('.')
            .try_fold(self, |node, segment| node.children.get(segment))
    }

    /// True when the path names a value or a structure.
    pub fn has(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The value at a dotted path.
    pub fn str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(|p| p.value.as_deref())
    }

    /// The value at a path, owned.
    pub fn string(&self, path: &str) -> Option<String> {
        self.str(path).map(str::to_string)
    }

    /// The members of a list (`path.member.N`), in ascending N. An empty list (`path=`) and a
    /// missing one both give no members.
    pub fn list(&self, path: &str) -> Vec<&Params> {
        let Some(members) = self.get(path).and_then(|p| p.children.get("member")) else {
            return Vec::new();
        };
        let mut numbered: Vec<(u64, &Params)> = members
            .children
            .iter()
            .filter_map(|(n, p)| n.parse::<u64>().ok().map(|n| (n, p)))
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        numbered.into_iter().map(|(_, p)| p).collect()
    }

    /// The values of a list of strings.
    pub fn strings(&self, path: &str) -> Vec<String> {
        self.list(path)
            .into_iter()
            .filter_map(|p| p.value.clone())
            .collect()
    }

    /// True when the list was given at all (possibly empty).
    pub fn has_list(&self, path: &str) -> bool {
        self.has(path)
    }

    /// A required string; records an error naming `field_path` when missing.
    pub fn required(&self, path: &str, field_path: &str, errors: &mut FieldErrors) -> String {
        match self.str(path) {
            Some(v) => v.to_string(),
            None => {
                errors.push(field_path, "a value was expected, found none");
                String::new()
            }
        }
    }

    /// An optional integer; records an error when it does not parse.
    pub fn int(&self, path: &str, field_path: &str, errors: &mut FieldErrors) -> Option<i64> {
        let v = self.str(path)?;
        match v.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(field_path, format!("an integer was expected, found '{v}'"));
                None
            }
        }
    }

    /// An optional non-negative integer that fits `u32`/`u64` (weights, orders, durations).
    pub fn unsigned(&self, path: &str, field_path: &str, errors: &mut FieldErrors) -> Option<u64> {
        let n = self.int(path, field_path, errors)?;
        match u64::try_from(n) {
            Ok(n) if n <= u64::from(u32::MAX) => Some(n),
            _ => {
                errors.push(
                    field_path,
                    format!("a non-negative integer was expected, found {n}"),
                );
                None
            }
        }
    }

    /// An optional number (berth accepts fractional seconds).
    pub fn float(&self, path: &str, field_path: &str, errors: &mut FieldErrors) -> Option<f64> {
        let v = self.str(path)?;
        match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Some(n),
            _ => {
                errors.push(field_path, format!("a number was expected, found '{v}'"));
                None
            }
        }
    }

    /// An optional boolean (`true`/`false`).
    pub fn boolean(&self, path: &str, field_path: &str, errors: &mut FieldErrors) -> Option<bool> {
        match self.str(path)? {
            "true" => Some(true),
            "false" => Some(false),
            v => {
                errors.push(
                    field_path,
                    format!("true or false was expected, found '{v}'"),
                );
                None
            }
        }
    }
}
