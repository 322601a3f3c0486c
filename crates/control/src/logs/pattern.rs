//! CloudWatch Logs filter patterns: terms (`ERROR "disk full" -timeout ?WARN`), JSON selectors
//! (`{ $.level = "ERROR" && $.ms > 500 }`) and space-delimited patterns (`[ip, user, ..., status = 5*]`).

use serde_json::Value;

/// Why a filter pattern was refused, with the 0-based character position of the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid filter pattern at position {position}: {message}")]
pub struct PatternError {
    pub position: usize,
    pub message: String,
}

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterPattern {
    /// The empty pattern: every event.
    All,
    /// Terms: all `required`, none of `excluded`, and one of `any_of` when there are some.
    Terms {
        required: Vec<String>,
        excluded: Vec<String>,
        any_of: Vec<String>,
    },
    /// `{ ... }` over JSON messages.
    Json(JsonExpr),
    /// `[a, b = 5*, ...]` over space-delimited messages.
    Space(Vec<SpaceField>),
}

/// One step of a JSON path: `.key` or `[index]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A literal a selector compares with: a string (with `*` wildcards) or a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
}

/// A JSON selector expression.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpr {
    And(Box<JsonExpr>, Box<JsonExpr>),
    Or(Box<JsonExpr>, Box<JsonExpr>),
    Cmp(Vec<PathStep>, CmpOp, Literal),
    NotExists(Vec<PathStep>),
    IsNull(Vec<PathStep>),
    IsBool(Vec<PathStep>, bool),
}

/// One field of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum SpaceField {
    /// `...`: any number of fields.
    Ellipsis,
    /// A named field with conditions: any of the groups, each all of its comparisons.
    Named {
        name: String,
        any_of: Vec<Vec<(CmpOp, Literal)>>,
    },
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    _text: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            _text: text,
        }
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            position: self.pos,
            message: message.into(),
        })
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let save = self.pos;
        if self.eat(w) && !self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return true;
        }
        self.pos = save;
        false
    }
    fn quoted(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.pos += 1;
                    }
                }
                c => out.push(c),
            }
        }
        Err(PatternError {
            position: start,
            message: "unterminated quoted string".into(),
        })
    }
}

impl FilterPattern {
    /// Parses CloudWatch filter pattern syntax.
    pub fn parse(text: &str) -> Result<FilterPattern, PatternError> {
        let trimmed = text.trim_start();
        let offset = text.chars().count() - trimmed.chars().count();
        let mut lx = Lexer::new(text);
        lx.pos = offset;
        match trimmed.chars().next() {
            None => Ok(FilterPattern::All),
            Some('{') => {
                lx.pos += 1;
                let e = parse_or(&mut lx)?;
                if !lx.eat("}") {
                    return lx.err("expected `}` or `&&`/`||`");
                }
                lx.skip_ws();
                if lx.peek().is_some() {
                    return lx.err("unexpected text after `}`");
                }
                Ok(FilterPattern::Json(e))
            }
            Some('[') => {
                lx.pos += 1;
                parse_space(&mut lx).map(FilterPattern::Space)
            }
            Some(_) => parse_terms(&mut lx),
        }
    }

    /// Whether the pattern matches a message.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Terms {
                required,
                excluded,
                any_of,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
                    && (any_of.is_empty() || any_of.iter().any(|t| message.contains(t.as_str())))
            }
            FilterPattern::Json(e) => json_message(message).is_some_and(|v| eval_json(e, &v)),
            FilterPattern::Space(fields) => space_match(fields, message).is_some(),
        }
    }

    /// For a matching message, the value a metric transformation's `$.path` / `$field`
    /// selector picks (None when the message does not match or has no such value).
    pub fn extract(&self, message: &str, selector: &str) -> Option<String> {
        if !self.matches(message) {
            return None;
        }
        if let Some(path) = selector
            .strip_prefix('$')
            .filter(|p| p.starts_with(['.', '[']))
        {
            let mut lx = Lexer::new(path);
            let steps = parse_path_rest(&mut lx).ok()?;
            if lx.peek().is_some() {
                return None;
            }
            let v = json_message(message)?;
            return lookup(&v, &steps).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            });
        }
        let name = selector.strip_prefix('$')?;
        if let FilterPattern::Space(fields) = self {
            return space_match(fields, message)?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v);
        }
        None
    }
}

fn parse_terms(lx: &mut Lexer) -> Result<FilterPattern, PatternError> {
    let mut required = Vec::new();
    let mut excluded = Vec::new();
    let mut any_of = Vec::new();
    loop {
        lx.skip_ws();
        let Some(c) = lx.peek() else { break };
        let kind = match c {
            '-' | '?' => {
                lx.pos += 1;
                c
            }
            _ => '+',
        };
        let term = match lx.peek() {
            Some('"') => lx.quoted()?,
            Some(c) if c.is_whitespace() => {
                return lx.err(format!("expected a term after `{kind}`"))
            }
            None => return lx.err(format!("expected a term after `{kind}`")),
            Some(_) => {
                let mut t = String::new();
                while let Some(c) = lx.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '"' || c == '{' || c == '}' || c == '[' || c == ']' {
                        return lx.err(format!(
                            "unexpected `{c}` in a term (quote terms with special characters)"
                        ));
                    }
                    t.push(c);
                    lx.pos += 1;
                }
                t
            }
        };
        match kind {
            '-' => excluded.push(term),
            '?' => any_of.push(term),
            _ => required.push(term),
        }
    }
    Ok(FilterPattern::Terms {
        required,
        excluded,
        any_of,
    })
}

fn parse_or(lx: &mut Lexer) -> Result<JsonExpr, PatternError> {
    let mut left = parse_and(lx)?;
    while lx.eat("||") {
        let right = parse_and(lx)?;
        left = JsonExpr::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(lx: &mut Lexer) -> Result<JsonExpr, PatternError> {
    let mut left = parse_atom(lx)?;
    while lx.eat("&&") {
        let right = parse_atom(lx)?;
        left = JsonExpr::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_atom(lx: &mut Lexer) -> Result<JsonExpr, PatternError> {
    if lx.eat("(") {
        let e = parse_or(lx)?;
        if !lx.eat(")") {
            return lx.err("expected `)`");
        }
        return Ok(e);
    }
    lx.skip_ws();
    if !lx.eat("$") {
        return lx.err("expected a selector such as `$.level`");
    }
    let path = parse_path_rest(lx)?;
    if path.is_empty() {
        return lx.err("expected `.field` or `[index]` after `$`");
    }
    if lx.eat_word("NOT") {
        if !lx.eat_word("EXISTS") {
            return lx.err("expected `EXISTS` after `NOT`");
        }
        return Ok(JsonExpr::NotExists(path));
    }
    if lx.eat_word("IS") {
        if lx.eat_word("NULL") {
            return Ok(JsonExpr::IsNull(path));
        }
        if lx.eat_word("TRUE") {
            return Ok(JsonExpr::IsBool(path, true));
        }
        if lx.eat_word("FALSE") {
            return Ok(JsonExpr::IsBool(path, false));
        }
        lx.skip_ws();
        return lx.err("expected `NULL`, `TRUE` or `FALSE` after `IS`");
    }
    let op = parse_op(lx)?;
    let value = parse_literal(lx)?;
    if let (Literal::Str(_), CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge) = (&value, op) {
        return lx.err("`<`, `<=`, `>` and `>=` compare numbers, found a string");
    }
    Ok(JsonExpr::Cmp(path, op, value))
}

fn parse_op(lx: &mut Lexer) -> Result<CmpOp, PatternError> {
    for (s, op) in [
        ("!=", CmpOp::Ne),
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("=", CmpOp::Eq),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ] {
        if lx.eat(s) {
            return Ok(op);
        }
    }
    lx.err("expected an operator (=, !=, <, <=, >, >=, IS, NOT EXISTS)")
}

fn parse_literal(lx: &mut Lexer) -> Result<Literal, PatternError> {
    lx.skip_ws();
    match lx.peek() {
        Some('"') => Ok(Literal::Str(lx.quoted()?)),
        None => lx.err("expected a value"),
        Some(_) => {
            let start = lx.pos;
            let mut t = String::new();
            while let Some(c) = lx.peek() {
                if c.is_whitespace() || "&|)}],".contains(c) {
                    break;
                }
                t.push(c);
                lx.pos += 1;
            }
            if t.is_empty() {
                lx.pos = start;
                return lx.err("expected a value");
            }
            Ok(match t.parse::<f64>() {
                Ok(n) if n.is_finite() => Literal::Num(n),
                _ => Literal::Str(t),
            })
        }
    }
}

/// Parses `.a.b[0]...` (after the `$`).
fn parse_path_rest(lx: &mut Lexer) -> Result<Vec<PathStep>, PatternError> {
    let mut steps = Vec::new();
    let mut key = String::new();
    let ident = |lx: &mut Lexer, key: &mut String| {
        while let Some(c) = lx.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '@' || c == ':' {
                key.push(c);
                lx.pos += 1;
            } else {
                break;
            }
        }
    };
    loop {
        match lx.peek() {
            Some('.') => {
                lx.pos += 1;
                ident(lx, &mut key);
                if key.is_empty() {
                    return lx.err("expected a field name after `.`");
                }
                steps.push(PathStep::Key(std::mem::take(&mut key)));
            }
            Some('[') => {
                lx.pos += 1;
                let mut digits = String::new();
                while let Some(c) = lx.peek().filter(char::is_ascii_digit) {
                    digits.push(c);
                    lx.pos += 1;
                }
                let Ok(i) = digits.parse() else {
                    return lx.err("expected an array index");
                };
                if lx.peek() != Some(']') {
                    return lx.err("expected `]`");
                }
                lx.pos += 1;
                steps.push(PathStep::Index(i));
            }
            _ => return Ok(steps),
        }
    }
}

fn parse_space(lx: &mut Lexer) -> Result<Vec<SpaceField>, PatternError> {
    let mut fields = Vec::new();
    loop {
        if lx.eat("]") {
            break;
        }
        if lx.eat("...") {
            fields.push(SpaceField::Ellipsis);
        } else {
            lx.skip_ws();
            let mut name = String::new();
            while let Some(c) = lx.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                name.push(c);
                lx.pos += 1;
            }
            if name.is_empty() {
                return lx.err("expected a field name, `...` or `]`");
            }
            let mut any_of = Vec::new();
            let mut all = Vec::new();
            loop {
                lx.skip_ws();
                if matches!(lx.peek(), Some(',') | Some(']') | None) {
                    break;
                }
                if lx.eat("&&") {
                    lx.skip_ws();
                    let mut n = String::new();
                    while let Some(c) = lx.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                        n.push(c);
                        lx.pos += 1;
                    }
                    if n != name {
                        return lx.err(format!("expected `{name}` after `&&`"));
                    }
                }
                if lx.eat("||") {
                    any_of.push(std::mem::take(&mut all));
                    lx.skip_ws();
                    while lx.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        lx.pos += 1;
                    }
                }
                let op = parse_op(lx)?;
                all.push((op, parse_literal(lx)?));
            }
            if !all.is_empty() {
                any_of.push(all);
            }
            fields.push(SpaceField::Named { name, any_of });
        }
        if lx.eat(",") {
            continue;
        }
        if lx.eat("]") {
            break;
        }
        return lx.err("expected `,` or `]`");
    }
    lx.skip_ws();
    if lx.peek().is_some() {
        return lx.err("unexpected text after `]`");
    }
    Ok(fields)
}

fn json_message(message: &str) -> Option<Value> {
    let t = message.trim_start();
    if !t.starts_with('{') && !t.starts_with('[') {
        return None;
    }
    serde_json::from_str(t).ok()
}

fn lookup<'v>(v: &'v Value, path: &[PathStep]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, step| match step {
        PathStep::Key(k) => v.get(k.as_str()),
        PathStep::Index(i) => v.get(*i),
    })
}

/// `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(p) = rest.find(part) {
            rest = &rest[p + part.len()..];
        } else {
            return false;
        }
    }
    true
}

fn compare_text(op: CmpOp, lit: &Literal, text: &str) -> bool {
    match lit {
        Literal::Str(p) => {
            let eq = wildcard_match(p, text);
            match op {
                CmpOp::Eq => eq,
                CmpOp::Ne => !eq,
                _ => false,
            }
        }
        Literal::Num(n) => match text.parse::<f64>() {
            Ok(v) => compare_num(op, v, *n),
            Err(_) => op == CmpOp::Ne,
        },
    }
}

fn compare_num(op: CmpOp, v: f64, n: f64) -> bool {
    match op {
        CmpOp::Eq => v == n,
        CmpOp::Ne => v != n,
        CmpOp::Lt => v < n,
        CmpOp::Le => v <= n,
        CmpOp::Gt => v > n,
        CmpOp::Ge => v >= n,
    }
}

fn eval_json(e: &JsonExpr, v: &Value) -> bool {
    match e {
        JsonExpr::And(a, b) => eval_json(a, v) && eval_json(b, v),
        JsonExpr::Or(a, b) => eval_json(a, v) || eval_json(b, v),
        JsonExpr::NotExists(p) => lookup(v, p).is_none(),
        JsonExpr::IsNull(p) => lookup(v, p).is_some_and(Value::is_null),
        JsonExpr::IsBool(p, b) => lookup(v, p).and_then(Value::as_bool) == Some(*b),
        JsonExpr::Cmp(p, op, lit) => match (lookup(v, p), lit) {
            (None, _) => false,
            (Some(Value::Number(x)), Literal::Num(n)) => {
                x.as_f64().is_some_and(|x| compare_num(*op, x, *n))
            }
            (Some(Value::String(s)), lit) => compare_text(*op, lit, s),
            (Some(Value::Bool(b)), Literal::Str(_)) => compare_text(*op, lit, &b.to_string()),
            (Some(Value::Number(x)), Literal::Str(_)) => compare_text(*op, lit, &x.to_string()),
            (Some(_), _) => *op == CmpOp::Ne,
        },
    }
}

/// Splits a space-delimited message into fields; `"..."` and `[...]` are one field each.
fn split_fields(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = message.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut f = String::new();
        let close = match c {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            chars.next();
            for c in chars.by_ref() {
                if c == close {
                    break;
                }
                f.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                f.push(c);
                chars.next();
            }
        }
        out.push(f);
    }
    out
}

/// Matches a space-delimited pattern; the named fields' values when it matches.
fn space_match(pattern: &[SpaceField], message: &str) -> Option<Vec<(String, String)>> {
    fn go(p: &[SpaceField], f: &[String], out: &mut Vec<(String, String)>) -> bool {
        match p.split_first() {
            None => f.is_empty(),
            Some((SpaceField::Ellipsis, rest)) => (0..=f.len()).any(|skip| {
                let n = out.len();
                if go(rest, &f[skip..], out) {
                    true
                } else {
                    out.truncate(n);
                    false
                }
            }),
            Some((SpaceField::Named { name, any_of }, rest)) => {
                let Some((v, more)) = f.split_first() else {
                    return false;
                };
                let ok = any_of.is_empty()
                    || any_of
                        .iter()
                        .any(|all| all.iter().all(|(op, lit)| compare_text(*op, lit, v)));
                if !ok {
                    return false;
                }
                out.push((name.clone(), v.clone()));
                go(rest, more, out)
            }
        }
    }
    let fields = split_fields(message);
    let mut out = Vec::new();
    go(pattern, &fields, &mut out).then_some(out)
}

#[cfg(test)]
mod tests;
