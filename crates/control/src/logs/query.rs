//! The Logs Insights query language: a parser (commands `fields`, `filter`, `parse`, `stats`,
//! `sort`, `limit`, `dedup`, `display` joined by `|`) and an evaluator over rows. Rows start as
//! log events (`@timestamp`, `@message`, `@logStream`, `@log`, plus fields extracted from JSON
//! messages) and become plain tables after `stats`.

use regex::Regex;
use std::borrow::Cow;
use std::collections::HashMap;

/// Why a query was refused: what and where (0-based character position).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("query error at position {position}: {message}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

/// A parsed query.
#[derive(Debug, Clone)]
pub struct Query {
    pub commands: Vec<Command>,
}

/// One command of a query.
#[derive(Debug, Clone)]
pub enum Command {
    /// `fields expr [as name], ...`
    Fields(Vec<(Expr, String)>),
    /// `display name, ...`
    Display(Vec<String>),
    /// `filter expr`
    Filter(Expr),
    /// `parse field "glob * pattern" as a, b` or `parse field /(?<a>re)/`
    Parse {
        source: Expr,
        pattern: Regex,
        names: Vec<String>,
        /// A glob pattern captures by position, a regex by name.
        glob: bool,
    },
    /// `stats agg [as name], ... [by expr [as name], ...]`
    Stats {
        aggs: Vec<(Agg, String)>,
        by: Vec<(Expr, String)>,
    },
    /// `sort expr [asc|desc], ...` (true = descending)
    Sort(Vec<(Expr, bool)>),
    /// `limit n`
    Limit(usize),
    /// `dedup field, ...`
    Dedup(Vec<String>),
}

/// An aggregate function of `stats`.
#[derive(Debug, Clone)]
pub enum Agg {
    Count(Option<Expr>),
    CountDistinct(Expr),
    Sum(Expr),
    Avg(Expr),
    Min(Expr),
    Max(Expr),
    Pct(Expr, f64),
    Stddev(Expr),
    Earliest(Expr),
    Latest(Expr),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
}

/// An expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Field(String),
    Str(String),
    Num(f64),
    Bin(Box<Expr>, BinOp, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// `e like "substring"` (negated when the bool is true)
    LikeStr(Box<Expr>, String, bool),
    /// `e like /re/`, `e =~ /re/`
    LikeRe(Box<Expr>, Regex, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    Call(String, Vec<Expr>),
    /// A duration literal in ms (`5m`).
    Duration(i64),
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Num(f64),
    /// Milliseconds since the epoch (shown as `YYYY-MM-DD HH:MM:SS.mmm`).
    Time(i64),
    Bool(bool),
    Str(Cow<'a, str>),
}

impl Val<'_> {
    /// The same value, owning its text.
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Num(n) => Val::Num(n),
            Val::Time(t) => Val::Time(t),
            Val::Bool(b) => Val::Bool(b),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Time(t) => Some(*t as f64),
            Val::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Null => None,
        }
    }
    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0,
            Val::Time(_) => true,
            Val::Str(s) => !s.is_empty(),
        }
    }
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Null => None,
            Val::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            other => Some(Cow::Owned(other.render())),
        }
    }
    /// The value as GetQueryResults shows it.
    pub fn render(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Num(n) => format_num(*n),
            Val::Time(t) => format_time(*t),
            Val::Bool(b) => b.to_string(),
            Val::Str(s) => s.to_string(),
        }
    }
}

/// A number as Insights shows it: integers without a fraction.
pub fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) of a ms timestamp.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The log event a row came from.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub timestamp: i64,
    pub message: Cow<'a, str>,
    pub log_stream: Cow<'a, str>,
    pub log: Cow<'a, str>,
}

/// A row: a log event with computed fields, or (after `stats`) just fields.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub event: Option<Event<'a>>,
    pub fields: Vec<(String, Val<'a>)>,
    json: std::cell::OnceCell<Vec<(String, Val<'static>)>>,
}

impl<'a> Row<'a> {
    /// A row of one log event.
    pub fn from_event(event: Event<'a>) -> Row<'a> {
        Row {
            event: Some(event),
            fields: Vec::new(),
            json: std::cell::OnceCell::new(),
        }
    }

    /// A row of plain fields.
    pub fn from_fields(fields: Vec<(String, Val<'a>)>) -> Row<'a> {
        Row {
            event: None,
            fields,
            json: std::cell::OnceCell::new(),
        }
    }

    /// The same row owning its data.
    pub fn into_owned(self) -> Row<'static> {
        let json = self.json;
        Row {
            event: self.event.map(|e| Event {
                timestamp: e.timestamp,
                message: Cow::Owned(e.message.into_owned()),
                log_stream: Cow::Owned(e.log_stream.into_owned()),
                log: Cow::Owned(e.log.into_owned()),
            }),
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (k, v.into_owned()))
                .collect(),
            json,
        }
    }

    fn set(&mut self, name: &str, v: Val<'a>) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((name.to_string(), v)),
        }
    }

    /// A field's value (Null when absent).
    pub fn get(&self, name: &str) -> Val<'_> {
        if let Some((_, v)) = self.fields.iter().rev().find(|(k, _)| k == name) {
            return match v {
                Val::Str(s) => Val::Str(Cow::Borrowed(s.as_ref())),
                other => other.clone(),
            };
        }
        let Some(e) = &self.event else {
            return Val::Null;
        };
        match name {
            "@timestamp" => Val::Time(e.timestamp),
            "@message" => Val::Str(Cow::Borrowed(e.message.as_ref())),
            "@logStream" => Val::Str(Cow::Borrowed(e.log_stream.as_ref())),
            "@log" => Val::Str(Cow::Borrowed(e.log.as_ref())),
            _ => {
                let json = self.json.get_or_init(|| flatten_json(&e.message));
                json.iter()
                    .find(|(k, _)| k == name)
                    .map_or(Val::Null, |(_, v)| match v {
                        Val::Str(s) => Val::Str(Cow::Borrowed(s.as_ref())),
                        other => other.clone(),
                    })
            }
        }
    }
}

/// Top-level and nested (`a.b`, arrays `a.0`) fields of a JSON object message.
pub fn flatten_json(message: &str) -> Vec<(String, Val<'static>)> {
    let t = message.trim_start();
    if !t.starts_with('{') {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(t) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    fn go(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, Val<'static>)>) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    go(&key(k), v, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    go(&key(&i.to_string()), v, out);
                }
            }
            serde_json::Value::String(s) => {
                out.push((prefix.to_string(), Val::Str(Cow::Owned(s.clone()))))
            }
            serde_json::Value::Number(n) => {
                out.push((prefix.to_string(), n.as_f64().map_or(Val::Null, Val::Num)))
            }
            serde_json::Value::Bool(b) => out.push((prefix.to_string(), Val::Bool(*b))),
            serde_json::Value::Null => out.push((prefix.to_string(), Val::Null)),
        }
    }
    go("", &v, &mut out);
    out
}

// ---------------------------------------------------------------- parser

struct Parser<'s> {
    src: &'s str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

const KEYWORDS: [&str; 9] = ["and", "or", "not", "like", "in", "as", "by", "asc", "desc"];

impl<'s> Parser<'s> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            position: self.pos,
            message: message.into(),
        })
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|c| c.1)
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).map(|c| c.1)
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn byte_pos(&self, pos: usize) -> usize {
        self.chars.get(pos).map_or(self.src.len(), |c| c.0)
    }
    fn text(&self, from: usize, to: usize) -> String {
        self.src[self.byte_pos(from)..self.byte_pos(to)]
            .trim()
            .to_string()
    }
    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .map(|c| c.1)
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }
    /// The next bare word (letters, digits, `_`), without consuming it.
    fn word(&mut self) -> String {
        self.ws();
        let mut w = String::new();
        let mut i = self.pos;
        while let Some(c) = self.chars.get(i).map(|c| c.1) {
            if c.is_alphanumeric() || c == '_' {
                w.push(c);
                i += 1;
            } else {
                break;
            }
        }
        w
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let w = self.word();
        if w.eq_ignore_ascii_case(kw) {
            self.pos += w.chars().count();
            true
        } else {
            false
        }
    }
    fn at_end_of_command(&mut self) -> bool {
        self.ws();
        matches!(self.peek(), None | Some('|'))
    }

    fn identifier(&mut self) -> Result<String, QueryError> {
        self.ws();
        if self.peek() == Some('`') {
            self.pos += 1;
            let mut s = String::new();
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == '`' {
                    return Ok(s);
                }
                s.push(c);
            }
            return self.err("unterminated `quoted` field name");
        }
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric()
                || c == '_'
                || c == '@'
                || (c == '.' && !s.is_empty())
                || c == '$'
            {
                s.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
            return self.err("expected a field name");
        }
        Ok(s)
    }

    fn string(&mut self) -> Result<String, QueryError> {
        let quote = self.peek().unwrap_or('"');
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == quote {
                return Ok(s);
            }
            if c == '\\' {
                match self.peek() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some(c) => s.push(c),
                    None => break,
                }
                self.pos += 1;
                continue;
            }
            s.push(c);
        }
        self.pos = start;
        self.err("unterminated string")
    }

    fn regex(&mut self) -> Result<Regex, QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return self.err("unterminated regular expression");
                }
                Some('/') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if self.peek_at(1) == Some('/') => {
                    s.push('/');
                    self.pos += 2;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        // Flags after the closing slash: /re/i
        let mut flags = String::new();
        while let Some(c) = self.peek().filter(|c| "imsx".contains(*c)) {
            flags.push(c);
            self.pos += 1;
        }
        let text = if flags.is_empty() {
            s
        } else {
            format!("(?{flags}){s}")
        };
        Regex::new(&text).map_err(|e| QueryError {
            position: start,
            message: format!("invalid regular expression: {e}"),
        })
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        let mut commands = Vec::new();
        loop {
            self.ws();
            if self.peek().is_none() {
                if commands.is_empty() {
                    return self.err("expected a command (fields, filter, parse, stats, sort, limit, dedup, display)");
                }
                break;
            }
            commands.push(self.command()?);
            self.ws();
            match self.peek() {
                None => break,
                Some('|') => self.pos += 1,
                Some(c) => {
                    return self.err(format!("expected `|` or the end of the query, found `{c}`"))
                }
            }
        }
        Ok(Query { commands })
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        let start = self.pos;
        let name = self.word().to_ascii_lowercase();
        self.pos += name.chars().count();
        match name.as_str() {
            "fields" => Ok(Command::Fields(self.named_exprs()?)),
            "display" => {
                let mut names = vec![self.identifier()?];
                while self.eat(",") {
                    names.push(self.identifier()?);
                }
                Ok(Command::Display(names))
            }
            "filter" => Ok(Command::Filter(self.expr()?)),
            "parse" => self.parse_command(),
            "stats" => self.stats(),
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let e = self.expr()?;
                    let desc = if self.eat_kw("desc") {
                        true
                    } else {
                        self.eat_kw("asc");
                        false
                    };
                    keys.push((e, desc));
                    if !self.eat(",") {
                        break;
                    }
                }
                Ok(Command::Sort(keys))
            }
            "limit" => {
                self.ws();
                let w = self.word();
                match w.parse::<usize>() {
                    Ok(n) if n > 0 => {
                        self.pos += w.chars().count();
                        Ok(Command::Limit(n))
                    }
                    _ => self.err(format!("limit: expected a positive number, found {w:?}")),
                }
            }
            "dedup" => {
                let mut names = vec![self.identifier()?];
                while self.eat(",") {
                    names.push(self.identifier()?);
                }
                Ok(Command::Dedup(names))
            }
            "" => self.err("expected a command"),
            other => {
                self.pos = start;
                self.err(format!(
                    "unknown command `{other}` (expected fields, filter, parse, stats, sort, limit, dedup or display)"
                ))
            }
        }
    }

    fn named_exprs(&mut self) -> Result<Vec<(Expr, String)>, QueryError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            let start = self.pos;
            let e = self.expr()?;
            let end = self.pos;
            let name = if self.eat_kw("as") {
                self.identifier()?
            } else {
                match &e {
                    Expr::Field(f) => f.clone(),
                    _ => self.text(start, end),
                }
            };
            out.push((e, name));
            if !self.eat(",") {
                return Ok(out);
            }
        }
    }

    fn parse_command(&mut self) -> Result<Command, QueryError> {
        self.ws();
        let source = if matches!(self.peek(), Some('"') | Some('\'') | Some('/')) {
            Expr::Field("@message".into())
        } else {
            Expr::Field(self.identifier()?)
        };
        self.ws();
        match self.peek() {
            Some('"') | Some('\'') => {
                let glob_at = self.pos;
                let glob = self.string()?;
                let stars = glob.matches('*').count();
                if stars == 0 {
                    self.pos = glob_at;
                    return self.err("parse: the pattern has no `*` to capture");
                }
                if !self.eat_kw("as") {
                    return self.err("parse: expected `as` and the names of the captured fields");
                }
                let mut names = vec![self.identifier()?];
                while self.eat(",") {
                    names.push(self.identifier()?);
                }
                if names.len() != stars {
                    return self.err(format!(
                        "parse: the pattern captures {stars} fields, found {} names",
                        names.len()
                    ));
                }
                let mut re = String::from("(?s)");
                let parts: Vec<&str> = glob.split('*').collect();
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        // The last capture takes the rest of the text when the pattern ends in `*`.
                        let greedy = i == parts.len() - 1 && part.is_empty();
                        re.push_str(if greedy { "(.*)" } else { "(.*?)" });
                    }
                    re.push_str(&regex::escape(part));
                }
                let pattern = Regex::new(&re).map_err(|e| QueryError {
                    position: glob_at,
                    message: format!("parse: {e}"),
                })?;
                Ok(Command::Parse {
                    source,
                    pattern,
                    names,
                    glob: true,
                })
            }
            Some('/') => {
                let at = self.pos;
                let pattern = self.regex()?;
                let names: Vec<String> = pattern
                    .capture_names()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    self.pos = at;
                    return self
                        .err("parse: the regular expression has no named capture `(?<name>...)`");
                }
                Ok(Command::Parse {
                    source,
                    pattern,
                    names,
                    glob: false,
                })
            }
            _ => self.err("parse: expected a \"glob * pattern\" or a /regular expression/"),
        }
    }

    fn stats(&mut self) -> Result<Command, QueryError> {
        let mut aggs = Vec::new();
        loop {
            self.ws();
            let start = self.pos;
            let agg = self.agg()?;
            let end = self.pos;
            let name = if self.eat_kw("as") {
                self.identifier()?
            } else {
                self.text(start, end)
            };
            aggs.push((agg, name));
            if !self.eat(",") {
                break;
            }
        }
        let by = if self.eat_kw("by") {
            self.named_exprs()?
        } else {
            Vec::new()
        };
        if !self.at_end_of_command() {
            return self.err("stats: expected `,`, `as`, `by` or `|`");
        }
        Ok(Command::Stats { aggs, by })
    }

    fn agg(&mut self) -> Result<Agg, QueryError> {
        let at = self.pos;
        let name = self.word().to_ascii_lowercase();
        self.pos += name.chars().count();
        if !self.eat("(") {
            self.pos = at;
            return self.err("stats: expected an aggregate function such as count(*), avg(x)");
        }
        let arg = |p: &mut Self| p.expr();
        let agg = match name.as_str() {
            "count" => {
                let star = self.eat("*");
                self.ws();
                if star || self.peek() == Some(')') {
                    Agg::Count(None)
                } else {
                    Agg::Count(Some(arg(self)?))
                }
            }
            "count_distinct" => Agg::CountDistinct(arg(self)?),
            "sum" => Agg::Sum(arg(self)?),
            "avg" => Agg::Avg(arg(self)?),
            "min" => Agg::Min(arg(self)?),
            "max" => Agg::Max(arg(self)?),
            "stddev" => Agg::Stddev(arg(self)?),
            "earliest" => Agg::Earliest(arg(self)?),
            "latest" => Agg::Latest(arg(self)?),
            "pct" | "percentile" => {
                let e = arg(self)?;
                if !self.eat(",") {
                    return self.err("pct: expected `, percentile`");
                }
                self.ws();
                let at = self.pos;
                let w = self.number_text();
                match w.parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Agg::Pct(e, p),
                    _ => {
                        self.pos = at;
                        return self.err(format!("pct: expected a percentile 0..100, found {w:?}"));
                    }
                }
            }
            other => {
                self.pos = at;
                return self.err(format!("stats: unknown function `{other}`"));
            }
        };
        if !self.eat(")") {
            return self.err("expected `)`");
        }
        Ok(agg)
    }

    fn number_text(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_digit() || *c == '.') {
            s.push(c);
            self.pos += 1;
        }
        s
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") {
            let right = self.and_expr()?;
            left = Expr::Bin(Box::new(left), BinOp::Or, Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") {
            let right = self.not_expr()?;
            left = Expr::Bin(Box::new(left), BinOp::And, Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, QueryError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let save = self.pos;
        let negated = self.eat_kw("not");
        if self.eat_kw("like") {
            return self.like_rhs(left, negated);
        }
        if self.eat_kw("in") {
            if !self.eat("[") {
                return self.err("in: expected `[`");
            }
            let mut items = Vec::new();
            if !self.eat("]") {
                loop {
                    items.push(self.additive()?);
                    if self.eat("]") {
                        break;
                    }
                    if !self.eat(",") {
                        return self.err("in: expected `,` or `]`");
                    }
                }
            }
            return Ok(Expr::In(Box::new(left), items, negated));
        }
        if negated {
            self.pos = save;
            return Ok(left);
        }
        if self.eat("=~") {
            self.ws();
            if self.peek() != Some('/') {
                return self.err("=~: expected a /regular expression/");
            }
            let re = self.regex()?;
            return Ok(Expr::LikeRe(Box::new(left), re, false));
        }
        for (s, op) in [
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
            ("==", BinOp::Eq),
            ("=", BinOp::Eq),
            ("<", BinOp::Lt),
            (">", BinOp::Gt),
        ] {
            if self.eat(s) {
                let right = self.additive()?;
                return Ok(Expr::Bin(Box::new(left), op, Box::new(right)));
            }
        }
        Ok(left)
    }

    fn like_rhs(&mut self, left: Expr, negated: bool) -> Result<Expr, QueryError> {
        self.ws();
        match self.peek() {
            Some('/') => {
                let re = self.regex()?;
                Ok(Expr::LikeRe(Box::new(left), re, negated))
            }
            Some('"') | Some('\'') => {
                let s = self.string()?;
                Ok(Expr::LikeStr(Box::new(left), s, negated))
            }
            _ => self.err("like: expected a \"string\" or a /regular expression/"),
        }
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.multiplicative()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some('+') => BinOp::Add,
                Some('-') => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.multiplicative()?;
            left = Expr::Bin(Box::new(left), op, Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some('*') => BinOp::Mul,
                Some('/') => BinOp::Div,
                Some('%') => BinOp::Mod,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::Bin(Box::new(left), op, Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        if self.peek() == Some('-') {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        match self.peek() {
            None => self.err("expected a value, found the end of the query"),
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(")") {
                    return self.err("expected `)`");
                }
                Ok(e)
            }
            Some('"') | Some('\'') => Ok(Expr::Str(self.string()?)),
            Some(c) if c.is_ascii_digit() => {
                let text = self.number_text();
                let n: f64 = match text.parse() {
                    Ok(n) => n,
                    Err(_) => return self.err(format!("expected a number, found {text:?}")),
                };
                // A duration: 5m, 30s, 1h, 1d, 100ms (the unit right after the digits).
                let unit = if self.peek().is_some_and(char::is_alphabetic) {
                    self.word()
                } else {
                    String::new()
                };
                let ms = match unit.as_str() {
                    "" => return Ok(Expr::Num(n)),
                    "ms" => 1.0,
                    "s" | "sec" | "second" | "seconds" => 1000.0,
                    "m" | "min" | "minute" | "minutes" => 60_000.0,
                    "h" | "hr" | "hour" | "hours" => 3_600_000.0,
                    "d" | "day" | "days" => 86_400_000.0,
                    "w" | "week" | "weeks" => 604_800_000.0,
                    other => return self.err(format!("unknown time unit `{other}`")),
                };
                self.pos += unit.chars().count();
                Ok(Expr::Duration((n * ms) as i64))
            }
            Some(_) => {
                let at = self.pos;
                let name = self.identifier()?;
                if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                    self.pos = at;
                    return self.err(format!("expected a value, found the keyword `{name}`"));
                }
                if self.peek() == Some('(') {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(")") {
                                break;
                            }
                            if !self.eat(",") {
                                return self.err("expected `,` or `)`");
                            }
                        }
                    }
                    let lname = name.to_ascii_lowercase();
                    if !FUNCTIONS.contains(&lname.as_str()) {
                        self.pos = at;
                        return self.err(format!("unknown function `{name}`"));
                    }
                    if lname == "bin" && !matches!(args.as_slice(), [Expr::Duration(d)] if *d > 0) {
                        self.pos = at;
                        return self.err("bin: expected one duration such as bin(5m)");
                    }
                    return Ok(Expr::Call(lname, args));
                }
                match name.as_str() {
                    "true" => Ok(Expr::Num(1.0)),
                    "false" => Ok(Expr::Num(0.0)),
                    _ => Ok(Expr::Field(name)),
                }
            }
        }
    }
}

const FUNCTIONS: [&str; 17] = [
    "bin",
    "ispresent",
    "isempty",
    "isblank",
    "strlen",
    "tolower",
    "toupper",
    "concat",
    "abs",
    "floor",
    "ceil",
    "coalesce",
    "trim",
    "substr",
    "replace",
    "greatest",
    "least",
];

impl Query {
    /// Parses a query string.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut p = Parser {
            src: text,
            chars: text.char_indices().collect(),
            pos: 0,
        };
        p.query()
    }

    /// How many leading commands work row by row (fields, filter, parse, display).
    pub fn streaming_prefix(&self) -> usize {
        self.commands
            .iter()
            .position(|c| {
                !matches!(
                    c,
                    Command::Fields(_)
                        | Command::Filter(_)
                        | Command::Parse { .. }
                        | Command::Display(_)
                )
            })
            .unwrap_or(self.commands.len())
    }

    /// A text every matching event's `@message` must contain (to find candidates fast), if any.
    pub fn required_literal(&self) -> Option<String> {
        for c in &self.commands[..self.streaming_prefix()] {
            match c {
                Command::Filter(e) => {
                    if let Some(l) = literal_of(e) {
                        return Some(l);
                    }
                }
                Command::Fields(f) if f.iter().any(|(_, n)| n == "@message") => return None,
                Command::Parse { names, .. } if names.iter().any(|n| n == "@message") => {
                    return None
                }
                _ => {}
            }
        }
        None
    }

    /// Whether the first command is a filter that holds exactly when `@message` contains the
    /// required literal (so a line found by searching for it needs no second look).
    pub fn literal_decides(&self) -> bool {
        match self.commands.first() {
            Some(Command::Filter(e @ (Expr::LikeStr(..) | Expr::LikeRe(..)))) => {
                literal_of(e).is_some()
            }
            _ => false,
        }
    }

    /// The columns the results show, in order.
    pub fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        let mut explicit = false;
        for c in &self.commands {
            match c {
                Command::Fields(f) => {
                    explicit = true;
                    for (_, n) in f {
                        if !cols.contains(n) {
                            cols.push(n.clone());
                        }
                    }
                }
                Command::Stats { aggs, by } => {
                    explicit = true;
                    cols = by
                        .iter()
                        .map(|(_, n)| n.clone())
                        .chain(aggs.iter().map(|(_, n)| n.clone()))
                        .collect();
                }
                Command::Display(d) => {
                    explicit = true;
                    cols = d.clone();
                }
                _ => {}
            }
        }
        if !explicit {
            cols = vec!["@timestamp".into(), "@message".into()];
        }
        cols
    }

    /// Whether the query aggregates with `stats`.
    pub fn has_stats(&self) -> bool {
        self.commands
            .iter()
            .any(|c| matches!(c, Command::Stats { .. }))
    }
}

fn literal_of(e: &Expr) -> Option<String> {
    match e {
        Expr::LikeStr(f, s, false) if is_message(f) && !s.is_empty() => Some(s.clone()),
        Expr::LikeRe(f, re, false) if is_message(f) => {
            let s = re.as_str();
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || " _-:,;=@#!%&<>'\"".contains(c));
            plain.then(|| s.to_string())
        }
        Expr::Bin(a, BinOp::And, b) => literal_of(a).or_else(|| literal_of(b)),
        Expr::Bin(f, BinOp::Eq, v) if is_message(f) => match v.as_ref() {
            Expr::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn is_message(e: &Expr) -> bool {
    matches!(e, Expr::Field(f) if f == "@message")
}

// ---------------------------------------------------------------- evaluation

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (x, y) => x.num()?.partial_cmp(&y.num()?),
    }
}

/// Orders values for `sort`: nulls first, numbers before text.
pub fn sort_order(a: &Val, b: &Val) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let rank = |v: &Val| match v {
        Val::Null => 0,
        Val::Str(_) => 2,
        _ => 1,
    };
    match rank(a).cmp(&rank(b)) {
        Ordering::Equal => compare(a, b).unwrap_or(Ordering::Equal),
        o => o,
    }
}

/// Evaluates an expression on a row.
pub fn eval<'r>(e: &Expr, row: &'r Row) -> Val<'r> {
    match e {
        Expr::Field(f) => row.get(f),
        Expr::Str(s) => Val::Str(Cow::Owned(s.clone())),
        Expr::Num(n) => Val::Num(*n),
        Expr::Duration(d) => Val::Num(*d as f64),
        Expr::Not(x) => Val::Bool(!eval(x, row).truthy()),
        Expr::Neg(x) => eval(x, row).num().map_or(Val::Null, |n| Val::Num(-n)),
        Expr::LikeStr(x, s, neg) => {
            let v = eval(x, row);
            Val::Bool(v.text().is_some_and(|t| t.contains(s.as_str())) != *neg)
        }
        Expr::LikeRe(x, re, neg) => {
            let v = eval(x, row);
            Val::Bool(v.text().is_some_and(|t| re.is_match(&t)) != *neg)
        }
        Expr::In(x, items, neg) => {
            let v = eval(x, row);
            let found = items.iter().any(|i| {
                let iv = eval(i, row);
                compare(&v, &iv) == Some(std::cmp::Ordering::Equal)
            });
            Val::Bool(found != *neg)
        }
        Expr::Bin(a, op, b) => {
            match op {
                BinOp::And => return Val::Bool(eval(a, row).truthy() && eval(b, row).truthy()),
                BinOp::Or => return Val::Bool(eval(a, row).truthy() || eval(b, row).truthy()),
                _ => {}
            }
            let (x, y) = (eval(a, row), eval(b, row));
            use std::cmp::Ordering::*;
            match op {
                BinOp::Eq => Val::Bool(compare(&x, &y) == Some(Equal)),
                BinOp::Ne => Val::Bool(matches!(compare(&x, &y), Some(Less | Greater))),
                BinOp::Lt => Val::Bool(compare(&x, &y) == Some(Less)),
                BinOp::Le => Val::Bool(matches!(compare(&x, &y), Some(Less | Equal))),
                BinOp::Gt => Val::Bool(compare(&x, &y) == Some(Greater)),
                BinOp::Ge => Val::Bool(matches!(compare(&x, &y), Some(Greater | Equal))),
                _ => {
                    let (Some(p), Some(q)) = (x.num(), y.num()) else {
                        return Val::Null;
                    };
                    match op {
                        BinOp::Add => Val::Num(p + q),
                        BinOp::Sub => Val::Num(p - q),
                        BinOp::Mul => Val::Num(p * q),
                        BinOp::Div if q != 0.0 => Val::Num(p / q),
                        BinOp::Mod if q != 0.0 => Val::Num(p % q),
                        _ => Val::Null,
                    }
                }
            }
        }
        Expr::Call(name, args) => call(name, args, row),
    }
}

fn call<'r>(name: &str, args: &[Expr], row: &'r Row) -> Val<'r> {
    let arg = |i: usize| args.get(i).map_or(Val::Null, |a| eval(a, row));
    let text = |i: usize| arg(i).text().map(|t| t.into_owned());
    let num = |i: usize| arg(i).num();
    let s = |t: String| Val::Str(Cow::Owned(t));
    match name {
        "bin" => {
            let (Some(Expr::Duration(d)), Some(e)) = (args.first(), &row.event) else {
                return Val::Null;
            };
            Val::Time(e.timestamp.div_euclid(*d) * d)
        }
        "ispresent" => Val::Bool(arg(0) != Val::Null),
        "isempty" => Val::Bool(text(0).is_none_or(|t| t.is_empty())),
        "isblank" => Val::Bool(text(0).is_none_or(|t| t.trim().is_empty())),
        "strlen" => text(0).map_or(Val::Null, |t| Val::Num(t.chars().count() as f64)),
        "tolower" => text(0).map_or(Val::Null, |t| s(t.to_lowercase())),
        "toupper" => text(0).map_or(Val::Null, |t| s(t.to_uppercase())),
        "trim" => text(0).map_or(Val::Null, |t| s(t.trim().to_string())),
        "concat" => s((0..args.len()).filter_map(text).collect()),
        "abs" => num(0).map_or(Val::Null, |n| Val::Num(n.abs())),
        "floor" => num(0).map_or(Val::Null, |n| Val::Num(n.floor())),
        "ceil" => num(0).map_or(Val::Null, |n| Val::Num(n.ceil())),
        "greatest" => (0..args.len())
            .filter_map(num)
            .reduce(f64::max)
            .map_or(Val::Null, Val::Num),
        "least" => (0..args.len())
            .filter_map(num)
            .reduce(f64::min)
            .map_or(Val::Null, Val::Num),
        "coalesce" => (0..args.len())
            .map(arg)
            .find(|v| *v != Val::Null)
            .unwrap_or(Val::Null),
        "substr" => match (text(0), num(1)) {
            (Some(t), Some(start)) => {
                let chars = t.chars().skip(start.max(0.0) as usize);
                s(match num(2) {
                    Some(n) => chars.take(n.max(0.0) as usize).collect(),
                    None => chars.collect(),
                })
            }
            _ => Val::Null,
        },
        "replace" => match (text(0), text(1), text(2)) {
            (Some(t), Some(a), Some(b)) if !a.is_empty() => s(t.replace(&a, &b)),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

/// Applies one row-by-row command; false when the row is filtered out.
pub fn apply_streaming(c: &Command, row: &mut Row) -> bool {
    match c {
        Command::Filter(e) => eval(e, row).truthy(),
        Command::Fields(fields) => {
            for (e, name) in fields {
                if let Expr::Field(f) = e {
                    if f == name {
                        continue;
                    }
                }
                let v = eval(e, row).into_owned();
                row.set(name, v);
            }
            true
        }
        Command::Parse {
            source,
            pattern,
            names,
            glob,
        } => {
            let v = eval(source, row).text().map(|t| t.into_owned());
            let Some(text) = v else { return true };
            if let Some(caps) = pattern.captures(&text) {
                for (i, n) in names.iter().enumerate() {
                    let m = if *glob { caps.get(i + 1) } else { caps.name(n) };
                    if let Some(m) = m {
                        row.set(n, Val::Str(Cow::Owned(m.as_str().to_string())));
                    }
                }
            }
            true
        }
        _ => true,
    }
}

/// Partial state of one aggregate.
#[derive(Debug, Clone)]
pub enum AggState {
    Count(u64),
    Sum(f64, u64),
    Min(Option<f64>),
    Max(Option<f64>),
    Values(Vec<f64>),
    Distinct(std::collections::HashSet<String>),
    /// (timestamp, value) of the earliest/latest row.
    At(Option<(i64, Val<'static>)>),
}

impl AggState {
    fn new(a: &Agg) -> AggState {
        match a {
            Agg::Count(_) => AggState::Count(0),
            Agg::Sum(_) | Agg::Avg(_) => AggState::Sum(0.0, 0),
            Agg::Min(_) => AggState::Min(None),
            Agg::Max(_) => AggState::Max(None),
            Agg::Pct(..) | Agg::Stddev(_) => AggState::Values(Vec::new()),
            Agg::CountDistinct(_) => AggState::Distinct(Default::default()),
            Agg::Earliest(_) | Agg::Latest(_) => AggState::At(None),
        }
    }

    fn add(&mut self, a: &Agg, row: &Row) {
        match (self, a) {
            (AggState::Count(n), Agg::Count(None)) => *n += 1,
            (AggState::Count(n), Agg::Count(Some(e))) if eval(e, row) != Val::Null => *n += 1,
            (AggState::Sum(s, n), Agg::Sum(e) | Agg::Avg(e)) => {
                if let Some(v) = eval(e, row).num() {
                    *s += v;
                    *n += 1;
                }
            }
            (AggState::Min(m), Agg::Min(e)) => {
                if let Some(v) = eval(e, row).num() {
                    *m = Some(m.map_or(v, |m| m.min(v)));
                }
            }
            (AggState::Max(m), Agg::Max(e)) => {
                if let Some(v) = eval(e, row).num() {
                    *m = Some(m.map_or(v, |m| m.max(v)));
                }
            }
            (AggState::Values(vs), Agg::Pct(e, _) | Agg::Stddev(e)) => {
                if let Some(v) = eval(e, row).num() {
                    vs.push(v);
                }
            }
            (AggState::Distinct(set), Agg::CountDistinct(e)) => {
                if let Some(t) = eval(e, row).text() {
                    set.insert(t.into_owned());
                }
            }
            (AggState::At(at), Agg::Earliest(e) | Agg::Latest(e)) => {
                let ts = row.event.as_ref().map_or(0, |e| e.timestamp);
                let earliest = matches!(a, Agg::Earliest(_));
                let better = at
                    .as_ref()
                    .is_none_or(|(t, _)| if earliest { ts < *t } else { ts >= *t });
                if better {
                    let v = eval(e, row);
                    if v != Val::Null {
                        *at = Some((ts, v.into_owned()));
                    }
                }
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: AggState, a: &Agg) {
        match (self, other) {
            (AggState::Count(x), AggState::Count(y)) => *x += y,
            (AggState::Sum(s, n), AggState::Sum(s2, n2)) => {
                *s += s2;
                *n += n2;
            }
            (AggState::Min(x), AggState::Min(y)) => {
                *x = match (*x, y) {
                    (Some(p), Some(q)) => Some(p.min(q)),
                    (p, q) => p.or(q),
                }
            }
            (AggState::Max(x), AggState::Max(y)) => {
                *x = match (*x, y) {
                    (Some(p), Some(q)) => Some(p.max(q)),
                    (p, q) => p.or(q),
                }
            }
            (AggState::Values(x), AggState::Values(y)) => x.extend(y),
            (AggState::Distinct(x), AggState::Distinct(y)) => x.extend(y),
            (AggState::At(x), AggState::At(Some((t, v)))) => {
                let earliest = matches!(a, Agg::Earliest(_));
                if x.as_ref()
                    .is_none_or(|(t0, _)| if earliest { t < *t0 } else { t > *t0 })
                {
                    *x = Some((t, v));
                }
            }
            _ => {}
        }
    }

    fn finish(self, a: &Agg) -> Val<'static> {
        match self {
            AggState::Count(n) => Val::Num(n as f64),
            AggState::Sum(s, n) => match a {
                Agg::Avg(_) if n == 0 => Val::Null,
                Agg::Avg(_) => Val::Num(s / n as f64),
                _ => Val::Num(s),
            },
            AggState::Min(m) | AggState::Max(m) => m.map_or(Val::Null, Val::Num),
            AggState::Values(mut vs) => {
                if vs.is_empty() {
                    return Val::Null;
                }
                match a {
                    Agg::Pct(_, p) => {
                        vs.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
                        let rank = ((p / 100.0) * vs.len() as f64).ceil() as usize;
                        Val::Num(vs[rank.clamp(1, vs.len()) - 1])
                    }
                    _ => {
                        let n = vs.len() as f64;
                        let mean = vs.iter().sum::<f64>() / n;
                        let var =
                            vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                        Val::Num(var.sqrt())
                    }
                }
            }
            AggState::Distinct(set) => Val::Num(set.len() as f64),
            AggState::At(at) => at.map_or(Val::Null, |(_, v)| v),
        }
    }
}

/// Group key values, hashable (floats by their bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyVal {
    Null,
    Num(u64),
    Time(i64),
    Str(String),
}

impl KeyVal {
    fn of(v: Val) -> KeyVal {
        match v {
            Val::Null => KeyVal::Null,
            Val::Num(n) => KeyVal::Num(n.to_bits()),
            Val::Time(t) => KeyVal::Time(t),
            Val::Bool(b) => KeyVal::Str(b.to_string()),
            Val::Str(s) => KeyVal::Str(s.into_owned()),
        }
    }
    fn val(self) -> Val<'static> {
        match self {
            KeyVal::Null => Val::Null,
            KeyVal::Num(b) => Val::Num(f64::from_bits(b)),
            KeyVal::Time(t) => Val::Time(t),
            KeyVal::Str(s) => Val::Str(Cow::Owned(s)),
        }
    }
}

/// A `stats` command's groups being built (mergeable across threads).
#[derive(Debug, Default)]
pub struct Aggregation {
    pub groups: HashMap<Vec<KeyVal>, Vec<AggState>>,
    key: Vec<KeyVal>,
}

impl Aggregation {
    /// Adds one row.
    pub fn add(&mut self, aggs: &[(Agg, String)], by: &[(Expr, String)], row: &Row) {
        // Look the group up with a reused key buffer: no allocation for groups already seen.
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.extend(by.iter().map(|(e, _)| KeyVal::of(eval(e, row))));
        if !self.groups.contains_key(key.as_slice()) {
            let states = aggs.iter().map(|(a, _)| AggState::new(a)).collect();
            self.groups.insert(key.clone(), states);
        }
        if let Some(states) = self.groups.get_mut(key.as_slice()) {
            for (s, (a, _)) in states.iter_mut().zip(aggs) {
                s.add(a, row);
            }
        }
        self.key = key;
    }

    /// Merges another partial aggregation in.
    pub fn merge(&mut self, aggs: &[(Agg, String)], other: Aggregation) {
        for (k, states) in other.groups {
            match self.groups.get_mut(&k) {
                Some(mine) => {
                    for ((m, s), (a, _)) in mine.iter_mut().zip(states).zip(aggs) {
                        m.merge(s, a);
                    }
                }
                None => {
                    self.groups.insert(k, states);
                }
            }
        }
    }

    /// The result rows, sorted by group key.
    pub fn finish(self, aggs: &[(Agg, String)], by: &[(Expr, String)]) -> Vec<Row<'static>> {
        let mut groups: Vec<(Vec<KeyVal>, Vec<AggState>)> = self.groups.into_iter().collect();
        let mut rows: Vec<(Vec<Val<'static>>, Row<'static>)> = groups
            .drain(..)
            .map(|(k, states)| {
                let keys: Vec<Val<'static>> = k.into_iter().map(KeyVal::val).collect();
                let mut fields: Vec<(String, Val<'static>)> = by
                    .iter()
                    .map(|(_, n)| n.clone())
                    .zip(keys.iter().cloned())
                    .collect();
                fields.extend(
                    aggs.iter()
                        .zip(states)
                        .map(|((a, n), s)| (n.clone(), s.finish(a))),
                );
                (keys, Row::from_fields(fields))
            })
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .map(|(x, y)| sort_order(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        // With no groups, a stats over nothing still gives one row (count 0).
        if rows.is_empty() && by.is_empty() {
            let fields = aggs
                .iter()
                .map(|(a, n)| (n.clone(), AggState::new(a).finish(a)))
                .collect();
            return vec![Row::from_fields(fields)];
        }
        rows.into_iter().map(|(_, r)| r).collect()
    }
}

/// Runs the commands from `from` on materialized rows (stats, sort, limit, dedup and the rest).
pub fn run_rest(query: &Query, from: usize, mut rows: Vec<Row<'static>>) -> Vec<Row<'static>> {
    let mut sorted = false;
    for c in &query.commands[from..] {
        match c {
            Command::Stats { aggs, by } => {
                let mut agg = Aggregation::default();
                for r in &rows {
                    agg.add(aggs, by, r);
                }
                rows = agg.finish(aggs, by);
                sorted = true;
            }
            Command::Sort(keys) => {
                rows.sort_by(|a, b| {
                    keys.iter()
                        .map(|(e, desc)| {
                            let o = sort_order(&eval(e, a), &eval(e, b));
                            if *desc {
                                o.reverse()
                            } else {
                                o
                            }
                        })
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                sorted = true;
            }
            Command::Limit(n) => {
                if !sorted {
                    sort_newest_first(&mut rows);
                    sorted = true;
                }
                rows.truncate(*n);
            }
            Command::Dedup(names) => {
                let mut seen = std::collections::HashSet::new();
                rows.retain(|r| {
                    let key: Vec<KeyVal> = names.iter().map(|n| KeyVal::of(r.get(n))).collect();
                    seen.insert(key)
                });
            }
            other => rows.retain_mut(|r| apply_streaming(other, r)),
        }
    }
    if !sorted {
        sort_newest_first(&mut rows);
    }
    rows
}

fn sort_newest_first(rows: &mut [Row<'static>]) {
    rows.sort_by_key(|r| std::cmp::Reverse(r.event.as_ref().map_or(0, |e| e.timestamp)));
}

/// A result row as GetQueryResults shows it: the columns that have a value.
pub fn render_row(columns: &[String], row: &Row) -> Vec<(String, String)> {
    columns
        .iter()
        .filter_map(|c| {
            let v = row.get(c);
            (v != Val::Null).then(|| (c.clone(), v.render()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
