//! ALB wildcard patterns: `*` matches any run of characters (including `/`), `?` exactly one.

/// A compiled wildcard pattern, matched case-sensitively or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    pattern: Box<[u8]>,
    kind: Kind,
    case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard at all.
    Exact,
    /// `literal*`: a prefix test.
    Prefix,
    /// `*` alone.
    Any,
    /// Anything else.
    General,
}

impl Wildcard {
    /// Compiles `pattern`; `case_insensitive` folds ASCII case on both sides.
    pub fn new(pattern: &str, case_insensitive: bool) -> Wildcard {
        let bytes = pattern.as_bytes();
        let n_wild = bytes.iter().filter(|b| **b == b'*' || **b == b'?').count();
        let kind = if n_wild == 0 {
            Kind::Exact
        } else if bytes.iter().all(|b| *b == b'*') {
            Kind::Any
        } else if n_wild == 1 && bytes.last() == Some(&b'*') {
            Kind::Prefix
        } else {
            Kind::General
        };
        Wildcard {
            pattern: bytes.into(),
            kind,
            case_insensitive,
        }
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text = text.as_bytes();
        let ci = self.case_insensitive;
        match self.kind {
            Kind::Any => true,
            Kind::Exact => eq_bytes(&self.pattern, text, ci),
            Kind::Prefix => {
                let prefix = &self.pattern[..self.pattern.len() - 1];
                text.len() >= prefix.len() && eq_bytes(prefix, &text[..prefix.len()], ci)
            }
            Kind::General => matches(&self.pattern, text, ci),
        }
    }
}

fn eq_bytes(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn eq_byte(a: u8, b: u8, ci: bool) -> bool {
    a == b || (ci && a.eq_ignore_ascii_case(&b))
}

fn is_continuation(b: u8) -> bool {
    b & 0b1100_0000 == 0b1000_0000
}

/// Iterative matcher with single-star backtracking: linear for typical patterns, O(n·m) worst case.
/// `?` consumes one UTF-8 character.
fn matches(pattern: &[u8], text: &[u8], ci: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'?' {
            p += 1;
            t += 1;
            while t < text.len() && is_continuation(text[t]) {
                t += 1;
            }
        } else if p < pattern.len() && eq_byte(pattern[p], text[t], ci) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_table() {
        // (pattern, text, case_insensitive, expected)
        let table: &[(&str, &str, bool, bool)] = &[
            ("/api/*", "/api/users/1", false, true),
            ("/api/*", "/api", false, false),
            ("/api*", "/api", false, true),
            ("*", "", false, true),
            ("*", "/anything/at/all", false, true),
            ("/img/*.png", "/img/a/b/c.png", false, true),
            ("/img/*.png", "/img/a/b/c.jpg", false, false),
            ("/a?c", "/abc", false, true),
            ("/a?c", "/ac", false, false),
            ("/a?c", "/abbc", false, false),
            ("/a?c", "/aéc", false, true),
            ("/API/*", "/api/x", false, false),
            ("/API/*", "/api/x", true, true),
            ("*.example.com", "www.example.com", true, true),
            ("*.example.com", "example.com", true, false),
            ("*.Example.COM", "A.example.com", true, true),
            ("a*b*c", "axxbyyc", false, true),
            ("a*b*c", "axxbyy", false, false),
            ("*a*", "bbb", false, false),
            ("*a", "*ba", false, true),
            ("exact", "exact", false, true),
            ("exact", "exactly", false, false),
            ("**", "x", false, true),
            ("a**b", "ab", false, true),
        ];
        for (pattern, text, ci, expected) in table {
            assert_eq!(
                Wildcard::new(pattern, *ci).matches(text),
                *expected,
                "pattern {pattern:?} text {text:?} ci {ci}"
            );
        }
    }
}
