//! Repository names, tags and image references (`host:port/repo:tag`, `host:port/repo@sha256:…`).

use crate::digest::Digest;

/// Checks a repository name as ECR and the OCI distribution spec accept it: 2–256 characters,
/// `/`-separated components of lowercase letters and digits joined by `.`, `_`, `__` or `-`.
pub fn check_repository_name(name: &str) -> Result<(), String> {
    if name.len() < 2 || name.len() > 256 {
        return Err(format!(
            "repository name {name:?}: expected 2 to 256 characters, found {}",
            name.len()
        ));
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes
                .iter()
                .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            && !component.contains("..")
            && !component.contains("___")
            && !component.contains("._")
            && !component.contains("_.");
        if !ok {
            return Err(format!(
                "repository name {name:?}: expected components of lowercase letters and digits \
                 separated by '.', '_' or '-', found {component:?}"
            ));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?}: expected 1 to 128 of [A-Za-z0-9._-], not starting with '.' or '-'"
        ))
    }
}

/// What a reference names inside a repository: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    Tag(String),
    Digest(Digest),
}

impl Tagged {
    /// A manifest reference from a URL path segment: a digest if it parses as one, else a tag.
    pub fn parse(reference: &str) -> Result<Tagged, String> {
        if reference.contains(':') {
            Digest::parse(reference)
                .map(Tagged::Digest)
                .map_err(|e| e.to_string())
        } else {
            check_tag(reference).map(|()| Tagged::Tag(reference.to_string()))
        }
    }
    /// The reference as it goes into a URL.
    pub fn as_path(&self) -> String {
        match self {
            Tagged::Tag(t) => t.clone(),
            Tagged::Digest(d) => d.to_string(),
        }
    }
}

/// A full image reference: `host[:port]/repository(:tag|@digest)`; the tag defaults to `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub host: String,
    pub repository: String,
    pub reference: Tagged,
}

impl ImageReference {
    /// Parses `host:port/repo:tag` or `host:port/repo@sha256:…`. The host is required (berth has
    /// no default registry), and must contain a `.` or `:` or be `localhost`.
    pub fn parse(text: &str) -> Result<ImageReference, String> {
        let (host, rest) = text.split_once('/').ok_or_else(|| {
            format!("image reference {text:?}: expected host:port/repository:tag")
        })?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(format!(
                "image reference {text:?}: expected a registry host (with '.' or ':') before the first '/', found {host:?}"
            ));
        }
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            let digest =
                Digest::parse(digest).map_err(|e| format!("image reference {text:?}: {e}"))?;
            (repo, Tagged::Digest(digest))
        } else {
            let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[last_slash..].rfind(':') {
                Some(i) => {
                    let tag = &rest[last_slash + i + 1..];
                    check_tag(tag).map_err(|e| format!("image reference {text:?}: {e}"))?;
                    (&rest[..last_slash + i], Tagged::Tag(tag.to_string()))
                }
                None => (rest, Tagged::Tag("latest".to_string())),
            }
        };
        check_repository_name(repository).map_err(|e| format!("image reference {text:?}: {e}"))?;
        Ok(ImageReference {
            host: host.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reference {
            Tagged::Tag(t) => write!(f, "{}/{}:{t}", self.host, self.repository),
            Tagged::Digest(d) => write!(f, "{}/{}@{d}", self.host, self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["ab", "team/app", "a-b/c.d/e_f", "x9/y__z", "a--b"] {
            assert_eq!(check_repository_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a", "Team/app", "/app", "app/", "a//b", "-ab", "ab-", "a..b", "a b", "a:b",
        ] {
            assert!(check_repository_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(check_tag("v1.2.3-rc_1").is_ok());
        assert!(check_tag("_x").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        let r = ImageReference::parse("127.0.0.1:7878/team/app:v1").unwrap();
        assert_eq!(r.host, "127.0.0.1:7878");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference, Tagged::Tag("v1".into()));
        let r = ImageReference::parse("localhost/app").unwrap();
        assert_eq!(r.reference, Tagged::Tag("latest".into()));
        let d = Digest::of(b"x");
        let r = ImageReference::parse(&format!("reg.example:5000/app@{d}")).unwrap();
        assert_eq!(r.reference, Tagged::Digest(d.clone()));
        assert_eq!(r.to_string(), format!("reg.example:5000/app@{d}"));
        for bad in [
            "app:v1",
            "docker/app",
            "h:1/App:v1",
            "h:1/app:",
            "h:1/app@sha256:00",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }
}
