//! The principal of a TLS client certificate, as Kafka's `DefaultKafkaPrincipalBuilder` makes
//! it: the subject's distinguished name in RFC 2253 form (what Java's
//! `X500Principal.getName()` returns: RDNs last-to-first, `,` between them, `+` inside a
//! multi-valued RDN, keywords CN, C, L, ST, O, OU, STREET, DC, UID and dotted OIDs with `#hex`
//! DER values otherwise), then rewritten by `ssl.principal.mapping.rules` (`SslPrincipalMapper`).

use regex::Regex;

/// The subject DN of a DER certificate in RFC 2253 form.
pub(crate) fn subject_dn(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("unparseable client certificate: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match (keyword(&oid), atv.as_str()) {
                        (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                        _ => {
                            let value = atv.attr_value();
                            let mut der = vec![value.tag().0 as u8];
                            der.extend(der_length(value.data.len()));
                            der.extend_from_slice(value.data);
                            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 section 2.4 escaping.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// `ssl.principal.mapping.rules`: `DEFAULT` and `RULE:pattern/replacement/[LU]`, comma
/// separated, tried in order; the first rule whose pattern matches the whole DN gives the name.
#[derive(Debug)]
pub(crate) struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalMapper {
    /// Parses the rules as Kafka's `SslPrincipalMapper.parseRules` does.
    pub(crate) fn parse(rules: &str) -> Result<Self, String> {
        let splitter = Regex::new(
            r"^\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?)[^,]*?|(.*?))\s*(?:,\s*|$)",
        )
        .expect("static regex");
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            let caps = splitter
                .captures(rest)
                .ok_or_else(|| format!("Invalid rule: {rest}"))?;
            let whole = caps.get(0).expect("group 0").end();
            if whole == 0 {
                return Err(format!("Invalid rule: {rest}"));
            }
            if caps.get(1).is_some() {
                out.push(Rule::Default);
            } else if let (Some(p), Some(r)) = (caps.get(2), caps.get(3)) {
                let pattern = Regex::new(&format!("^(?:{})$", p.as_str()))
                    .map_err(|e| format!("Invalid rule pattern {}: {e}", p.as_str()))?;
                let case = match caps.get(4).map(|m| m.as_str()) {
                    Some("L") => Case::Lower,
                    Some("U") => Case::Upper,
                    _ => Case::Keep,
                };
                out.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(r.as_str()),
                    case,
                });
            } else {
                let bad = caps.get(5).map_or("", |m| m.as_str());
                return Err(format!("Invalid rule: {bad}"));
            }
            rest = &rest[whole..];
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The principal name for a DN; `Err` when no rule applies (the TLS client is refused).
    pub(crate) fn map(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_owned()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Case::Keep => name,
                            Case::Lower => name.to_lowercase(),
                            Case::Upper => name.to_uppercase(),
                        });
                    }
                }
            }
        }
        Err(format!("No rules apply to {dn}"))
    }
}

/// Java's replacement syntax (`$1`, `\/`) in the `regex` crate's (`${1}`).
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Kafka's SslPrincipalMapperTest.
    #[test]
    fn kafka_mapping_rules() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,DEFAULT";
        let m = PrincipalMapper::parse(rules).unwrap();
        assert_eq!(m.map("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(), "Duke");
        assert_eq!(
            m.map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(),
            "duke@sme"
        );
        assert_eq!(
            m.map("cn=duke,OU=JavaSoft,O=Sun Microsystems").unwrap(),
            "DUKE"
        );
        assert_eq!(
            m.map("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }

    #[test]
    fn default_is_the_whole_dn_and_no_match_refuses() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.map("CN=client,OU=eng").unwrap(), "CN=client,OU=eng");
        let m = PrincipalMapper::parse("RULE:^CN=([^,]*),.*$/$1/").unwrap();
        assert_eq!(m.map("CN=client,OU=eng").unwrap(), "client");
        assert!(m.map("OU=eng").is_err());
        assert!(PrincipalMapper::parse("RULE:a/b").is_err());
        assert!(PrincipalMapper::parse("garbage").is_err());
    }

    #[test]
    fn escapes_follow_rfc2253() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" #x "), "\\ #x\\ ");
        assert_eq!(escape("#x"), "\\#x");
    }
}
