//! Composite alarm rules: `ALARM("a") AND (OK("b") OR NOT ALARM("c"))`, `TRUE`, `FALSE`.
//! Precedence NOT > AND > OR; names may be quoted, bare, or alarm ARNs.

use super::StateValue;

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// `ALARM(name)`, `OK(name)` or `INSUFFICIENT_DATA(name)`.
    State(StateValue, String),
    /// `NOT x`.
    Not(Box<Rule>),
    /// `x AND y`.
    And(Box<Rule>, Box<Rule>),
    /// `x OR y`.
    Or(Box<Rule>, Box<Rule>),
}

/// Why a rule does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("AlarmRule: {message} at character {at}")]
pub struct RuleError {
    /// What was wrong.
    pub message: String,
    /// Character offset.
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((i, Token::Open));
            i += 1;
        } else if c == ')' {
            out.push((i, Token::Close));
            i += 1;
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(RuleError {
                    message: "a closing quote was expected, found the end".into(),
                    at: start,
                });
            }
            i += 1;
            out.push((start, Token::Quoted(s)));
        } else {
            let start = i;
            let mut s = String::new();
            while i < chars.len() && !chars[i].is_whitespace() && !"()\"'".contains(chars[i]) {
                s.push(chars[i]);
                i += 1;
            }
            out.push((start, Token::Word(s)));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some((_, Token::Word(x))) if x.eq_ignore_ascii_case(w))
    }
    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            message: message.into(),
            at: self.at(),
        })
    }
    fn or(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.and()?;
        while self.peek_word("OR") {
            self.pos += 1;
            let right = self.and()?;
            left = Rule::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut left = self.not()?;
        while self.peek_word("AND") {
            self.pos += 1;
            let right = self.not()?;
            left = Rule::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Rule, RuleError> {
        if self.peek_word("NOT") {
            self.pos += 1;
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Rule, RuleError> {
        let Some((_, token)) = self.tokens.get(self.pos).cloned() else {
            return self.err("ALARM(..), OK(..), INSUFFICIENT_DATA(..), TRUE, FALSE, NOT or ( was expected, found the end");
        };
        match token {
            Token::Open => {
                self.pos += 1;
                let inner = self.or()?;
                if !matches!(self.tokens.get(self.pos), Some((_, Token::Close))) {
                    return self.err("a closing ) was expected");
                }
                self.pos += 1;
                Ok(inner)
            }
            Token::Word(w) => {
                let upper = w.to_ascii_uppercase();
                match upper.as_str() {
                    "TRUE" => {
                        self.pos += 1;
                        Ok(Rule::Const(true))
                    }
                    "FALSE" => {
                        self.pos += 1;
                        Ok(Rule::Const(false))
                    }
                    "ALARM" | "OK" | "INSUFFICIENT_DATA" => {
                        let state = StateValue::parse(&upper).unwrap_or(StateValue::ALARM);
                        self.pos += 1;
                        if !matches!(self.tokens.get(self.pos), Some((_, Token::Open))) {
                            return self.err(format!("( after {upper} was expected"));
                        }
                        self.pos += 1;
                        let name = match self.tokens.get(self.pos) {
                            Some((_, Token::Quoted(s) | Token::Word(s))) => s.clone(),
                            _ => return self.err("an alarm name was expected"),
                        };
                        self.pos += 1;
                        if !matches!(self.tokens.get(self.pos), Some((_, Token::Close))) {
                            return self.err("a closing ) after the alarm name was expected");
                        }
                        self.pos += 1;
                        let name = name.trim().to_string();
                        if name.is_empty() {
                            return self.err("a non-empty alarm name was expected");
                        }
                        Ok(Rule::State(state, alarm_name_of(&name)))
                    }
                    _ => self.err(format!(
                        "ALARM(..), OK(..), INSUFFICIENT_DATA(..), TRUE, FALSE or NOT was expected, found '{w}'"
                    )),
                }
            }
            Token::Quoted(s) => self.err(format!(
                "a function such as ALARM(\"{s}\") was expected, found a bare name"
            )),
            Token::Close => self.err("an expression was expected, found )"),
        }
    }
}

/// An alarm ARN's name part, or the text itself when it is not an ARN.
pub fn alarm_name_of(name_or_arn: &str) -> String {
    if name_or_arn.starts_with("arn:") {
        if let Some((_, name)) = name_or_arn.split_once(":alarm:") {
            return name.to_string();
        }
    }
    name_or_arn.to_string()
}

/// Parses a rule (at most 10,240 characters, as CloudWatch allows).
pub fn parse(text: &str) -> Result<Rule, RuleError> {
    if text.chars().count() > 10_240 {
        return Err(RuleError {
            message: format!(
                "at most 10240 characters were expected, found {}",
                text.chars().count()
            ),
            at: 10_240,
        });
    }
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: text.chars().count(),
    };
    let rule = p.or()?;
    if p.pos < p.tokens.len() {
        return p.err("AND, OR or the end was expected");
    }
    Ok(rule)
}

impl Rule {
    /// The rule's value given each alarm's state (`None`: unknown alarm, which matches nothing).
    pub fn eval(&self, state_of: &impl Fn(&str) -> Option<StateValue>) -> bool {
        match self {
            Rule::Const(b) => *b,
            Rule::State(s, name) => state_of(name) == Some(*s),
            Rule::Not(x) => !x.eval(state_of),
            Rule::And(a, b) => a.eval(state_of) && b.eval(state_of),
            Rule::Or(a, b) => a.eval(state_of) || b.eval(state_of),
        }
    }

    /// Every alarm name the rule mentions, in order of appearance, without repeats.
    pub fn alarm_names(&self) -> Vec<String> {
        fn walk(r: &Rule, out: &mut Vec<String>) {
            match r {
                Rule::Const(_) => {}
                Rule::State(_, n) => {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
                Rule::Not(x) => walk(x, out),
                Rule::And(a, b) | Rule::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}
