//! The JAAS configuration text Kafka takes in `sasl.jaas.config` and
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config`:
//! `<LoginModule class> <flag> key="value" key2=value2 ... ;` — one or more entries. Values may
//! be double-quoted (with `\` escapes) or bare words.

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// Parses JAAS configuration text; an error names what was wrong.
pub fn parse(text: &str) -> Result<Vec<JaasEntry>, String> {
    let mut tokens = Tokens {
        chars: text.chars().peekable(),
    };
    let mut entries = Vec::new();
    while let Some(login_module) = tokens.word()? {
        if login_module == ";" {
            continue;
        }
        let flag = tokens
            .word()?
            .ok_or_else(|| format!("login module {login_module} has no control flag"))?;
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
            return Err(format!("invalid control flag {flag:?} for {login_module}"));
        }
        let mut options = BTreeMap::new();
        loop {
            match tokens.word()? {
                None => return Err("JAAS config entry is not terminated by ';'".into()),
                Some(w) if w == ";" => break,
                Some(key) => {
                    if tokens.word()?.as_deref() != Some("=") {
                        return Err(format!("expected '=' after option {key}"));
                    }
                    let value = tokens
                        .value()?
                        .ok_or_else(|| format!("option {key} has no value"))?;
                    options.insert(key, value);
                }
            }
        }
        entries.push(JaasEntry {
            login_module,
            flag,
            options,
        });
    }
    if entries.is_empty() {
        return Err("JAAS config has no login module".into());
    }
    Ok(entries)
}

struct Tokens<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Tokens<'_> {
    fn skip_space(&mut self) {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.chars.next();
        }
    }

    /// A bare word, or `=` / `;` on their own.
    fn word(&mut self) -> Result<Option<String>, String> {
        self.skip_space();
        match self.chars.peek() {
            None => Ok(None),
            Some('=') | Some(';') => Ok(self.chars.next().map(String::from)),
            Some('"') => Err("unexpected quoted string".into()),
            Some(_) => {
                let mut w = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_whitespace() || c == '=' || c == ';' || c == '"' {
                        break;
                    }
                    w.push(c);
                    self.chars.next();
                }
                Ok(Some(w))
            }
        }
    }

    fn value(&mut self) -> Result<Option<String>, String> {
        self.skip_space();
        if self.chars.peek() != Some(&'"') {
            return self.word();
        }
        self.chars.next();
        let mut v = String::new();
        loop {
            match self.chars.next() {
                None => return Err("unterminated quoted value".into()),
                Some('"') => return Ok(Some(v)),
                Some('\\') => match self.chars.next() {
                    Some(c) => v.push(c),
                    None => return Err("unterminated quoted value".into()),
                },
                Some(c) => v.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_login_module_with_users() {
        let e = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret" user_admin="admin-secret"
               user_alice="al\"ice";"#,
        )
        .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].flag, "required");
        assert_eq!(e[0].options["user_alice"], "al\"ice");
        assert_eq!(e[0].options["username"], "admin");
        let bare = parse("a.B required x=y;").unwrap();
        assert_eq!(bare[0].options["x"], "y");
    }

    #[test]
    fn malformed_texts_fail() {
        assert!(parse("").is_err());
        assert!(parse("a.B required x=\"y\"").is_err());
        assert!(parse("a.B sometimes;").is_err());
        assert!(parse("a.B required x;").is_err());
        assert!(parse("a.B required x=\"y;").is_err());
    }
}
