//! Tokens of the ksqlDB subset: identifiers (plain or `backquoted`),
//! 'strings', numbers, symbols; `--` and `/* */` comments are skipped.

use crate::error::{LResult, Located, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare word: keyword or identifier, decided by the parser.
    Word(String),
    /// A `backquoted` identifier: case preserved, never a keyword.
    Quoted(String),
    Str(String),
    Number(String),
    Symbol(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Byte offset in the source, for statement boundaries.
    pub offset: usize,
}

const SYMBOLS: [&str; 20] = [
    "->", "<>", "!=", "<=", ">=", "(", ")", ",", ";", ".", "*", "+", "-", "/", "%", "=", "<", ">",
    "[", "]",
];

pub fn tokenize(src: &str) -> LResult<Vec<Token>> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1u32, 0usize);
    let pos_at = |i: usize, line: u32, line_start: usize| Pos {
        line,
        col: (src[line_start..i].chars().count() + 1) as u32,
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            i += 1;
            line += 1;
            line_start = i;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let pos = pos_at(i, line, line_start);
        if src[i..].starts_with("--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            let Some(end) = src[i + 2..].find("*/") else {
                return Err(Located::new(pos, "unterminated /* comment"));
            };
            for b in &bytes[i..i + 2 + end + 2] {
                if *b == b'\n' {
                    line += 1;
                }
            }
            i += 2 + end + 2;
            if let Some(nl) = src[..i].rfind('\n') {
                line_start = nl + 1;
            }
            continue;
        }
        let start = i;
        let tok = if c == b'\'' {
            let mut value = String::new();
            i += 1;
            loop {
                match src[i..].find('\'') {
                    None => return Err(Located::new(pos, "unterminated string literal")),
                    Some(q) => {
                        value.push_str(&src[i..i + q]);
                        i += q + 1;
                        if bytes.get(i) == Some(&b'\'') {
                            value.push('\'');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            if value.contains('\n') {
                line += value.matches('\n').count() as u32;
                line_start = src[..i].rfind('\n').map(|n| n + 1).unwrap_or(line_start);
            }
            Tok::Str(value)
        } else if c == b'`' {
            let Some(end) = src[i + 1..].find('`') else {
                return Err(Located::new(pos, "unterminated `quoted identifier`"));
            };
            let name = src[i + 1..i + 1 + end].to_string();
            i += end + 2;
            if name.is_empty() {
                return Err(Located::new(pos, "empty quoted identifier"));
            }
            Tok::Quoted(name)
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Tok::Number(src[start..i].to_string())
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Tok::Word(src[start..i].to_string())
        } else if let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            i += sym.len();
            Tok::Symbol(sym)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(Located::new(pos, format!("unexpected character {ch:?}")));
        };
        tokens.push(Token {
            tok,
            pos,
            offset: start,
        });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: pos_at(i, line, line_start),
        offset: i,
    });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_positions_and_comments() {
        let toks = tokenize("SELECT a->b, 'it''s' -- c\n/* x\n y */ 1.5e3 `Mixed`;").unwrap();
        let kinds: Vec<&Tok> = toks.iter().map(|t| &t.tok).collect();
        assert_eq!(
            kinds,
            vec![
                &Tok::Word("SELECT".into()),
                &Tok::Word("a".into()),
                &Tok::Symbol("->"),
                &Tok::Word("b".into()),
                &Tok::Symbol(","),
                &Tok::Str("it's".into()),
                &Tok::Number("1.5e3".into()),
                &Tok::Quoted("Mixed".into()),
                &Tok::Symbol(";"),
                &Tok::Eof,
            ]
        );
        assert_eq!(toks[6].pos, Pos { line: 3, col: 7 });
    }

    #[test]
    fn unterminated_string_is_located() {
        let err = tokenize("SELECT\n  'abc").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, col: 3 });
        assert!(err.message.contains("unterminated"));
    }
}
