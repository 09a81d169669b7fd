//! Conditional expressions of callback ACEs and the attributes of resource
//! attribute ACEs: their SDDL text and binary forms (MS-DTYP 2.4.4.17, 2.4.10.1 and
//! 2.5.1.1).
//!
//! guise reads, writes and prints these; it does not evaluate them (see
//! [`crate::security::access`] for how AccessCheck treats callback ACEs).
//!
//! A condition from a peer (SDDL text or binary) nests at most
//! [`MAX_CONDITION_DEPTH`] deep, counting operators and parentheses, and its
//! `{}` lists (composites in the binary form) at most [`MAX_LIST_DEPTH`]; a
//! deeper one is [`ErrorKind::InvalidAcl`]. The bound keeps every reader, printer and writer
//! within a small, fixed stack: a condition of 10,000 nested parentheses is an
//! error, never a stack overflow that kills the server reading it.
//!
//! Printing follows Windows: every operation is enclosed in parentheses, operators
//! are separated by single spaces, attribute names keep their prefix (`@User.`,
//! `@Device.`, `@Resource.`), SIDs print as `SID(alias)` where they have one.
//!
//! # Example
//! ```
//! use guise::security::conditional::{condition_to_string, parse_condition};
//!
//! let binary = parse_condition(r#"(@User.Title == "PM" && Member_of {SID(BA)})"#, None)?;
//! assert_eq!(
//!     condition_to_string(&binary, None)?,
//!     r#"((@User.Title == "PM") && (Member_of {SID(BA)}))"#
//! );
//! # Ok::<(), guise::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;

use super::alias;

const SIGNATURE: &[u8; 4] = b"artx";

/// The deepest a condition may nest: the depth of its expression tree (an
/// operator is one deeper than its deepest operand, a literal or an attribute
/// is 1), and of its parentheses; its `{}` lists (composites in the binary
/// form) nest at most [`MAX_LIST_DEPTH`] deep. Windows
/// states no limit; 256 holds any condition a person writes (a chain of 255
/// `||` or `&&` is 256 deep) and keeps the recursion of guise's printers and
/// writers (the readers keep explicit stacks) within a small part of any
/// thread's stack.
pub const MAX_CONDITION_DEPTH: usize = 256;

/// The deepest `{}` lists (composites in the binary form) may nest in a
/// condition. A list of lists is rare and a deeper one has no use; each level
/// costs the printers and writers more stack than an operator does.
pub const MAX_LIST_DEPTH: usize = 32;

/// `depth` of lists, or [`ErrorKind::InvalidAcl`] if it is over
/// [`MAX_LIST_DEPTH`].
fn list_within(depth: usize) -> Result<usize> {
    if depth > MAX_LIST_DEPTH {
        Err(bad(format!("lists nest deeper than {MAX_LIST_DEPTH}")))
    } else {
        Ok(depth)
    }
}

/// `depth`, or [`ErrorKind::InvalidAcl`] if it is over [`MAX_CONDITION_DEPTH`].
fn within(depth: usize) -> Result<usize> {
    if depth > MAX_CONDITION_DEPTH {
        Err(bad(format!(
            "nests deeper than {MAX_CONDITION_DEPTH} (operators, parentheses and lists)"
        )))
    } else {
        Ok(depth)
    }
}

/// A literal of a conditional expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Literal {
    /// An integer: token (0x01..0x04), value, sign byte, base byte.
    Int {
        token: u8,
        value: i64,
        sign: u8,
        base: u8,
    },
    Str(String),
    Octets(Vec<u8>),
    Sid(Sid),
    Composite(Vec<Literal>),
}

/// A node of the expression tree.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Literal(Literal),
    /// An attribute: its token (0xf8 local, 0xf9 user, 0xfa resource, 0xfb device)
    /// and name.
    Attr(u8, String),
    Unary(u8, Box<Node>),
    Binary(u8, Box<Node>, Box<Node>),
}

/// The operators: token, SDDL text, arity (1 or 2).
const OPERATORS: &[(u8, &str, u8)] = &[
    (0x80, "==", 2),
    (0x81, "!=", 2),
    (0x82, "<", 2),
    (0x83, "<=", 2),
    (0x84, ">", 2),
    (0x85, ">=", 2),
    (0x86, "Contains", 2),
    (0x88, "Any_of", 2),
    (0x8e, "Not_Contains", 2),
    (0x8f, "Not_Any_of", 2),
    (0x89, "Member_of", 1),
    (0x8a, "Device_Member_of", 1),
    (0x8b, "Member_of_Any", 1),
    (0x8c, "Device_Member_of_Any", 1),
    (0x90, "Not_Member_of", 1),
    (0x91, "Not_Device_Member_of", 1),
    (0x92, "Not_Member_of_Any", 1),
    (0x93, "Not_Device_Member_of_Any", 1),
    (0x87, "Exists", 1),
    (0x8d, "Not_Exists", 1),
    (0xa0, "&&", 2),
    (0xa1, "||", 2),
    (0xa2, "!", 1),
];

const ATTR_PREFIXES: &[(u8, &str)] = &[(0xf9, "@User."), (0xfa, "@Resource."), (0xfb, "@Device.")];

fn op_text(token: u8) -> Option<(&'static str, u8)> {
    OPERATORS
        .iter()
        .find(|(t, _, _)| *t == token)
        .map(|(_, s, n)| (*s, *n))
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidAcl,
        format!("conditional expression: {why}"),
    )
}

// ---------------------------------------------------------------------------
// Binary form.

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| bad("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn utf16(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        if !len.is_multiple_of(2) {
            return Err(bad("a string has an odd byte length"));
        }
        let units: Vec<u16> = self
            .take(len)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| bad("a string is not valid UTF-16"))
    }

    /// A literal of `token`, inside `depth` composites.
    fn literal(&mut self, token: u8, depth: usize) -> Result<Literal> {
        Ok(match token {
            0x01..=0x04 => {
                let v = self.take(10)?;
                let value = i64::from_le_bytes(v[..8].try_into().unwrap_or_default());
                let (sign, base) = (v[8], v[9]);
                if !(1..=3).contains(&sign) || !(1..=3).contains(&base) {
                    return Err(bad("an integer has an unknown sign or base"));
                }
                Literal::Int {
                    token,
                    value,
                    sign,
                    base,
                }
            }
            0x10 => Literal::Str(self.utf16()?),
            0x18 => {
                let len = self.u32()? as usize;
                Literal::Octets(self.take(len)?.to_vec())
            }
            0x50 => {
                let len = self.u32()? as usize;
                let inner = self.take(len)?;
                let mut r = Reader { b: inner, pos: 0 };
                let mut items = Vec::new();
                let depth = list_within(depth + 1)?;
                while r.pos < inner.len() {
                    let t = r.take(1)?[0];
                    items.push(r.literal(t, depth)?);
                }
                Literal::Composite(items)
            }
            0x51 => {
                let len = self.u32()? as usize;
                let body = self.take(len)?;
                let (sid, used) = Sid::read_binary(body)?;
                if used != len {
                    return Err(bad("a SID literal has extra bytes"));
                }
                Literal::Sid(sid)
            }
            t => return Err(bad(format!("unknown literal token 0x{t:02x}"))),
        })
    }
}

/// Decodes application data (`artx` and tokens, then zero padding) to a tree.
fn decode(data: &[u8]) -> Result<Node> {
    let body = data
        .strip_prefix(SIGNATURE)
        .ok_or_else(|| bad("no \"artx\" signature"))?;
    let mut r = Reader { b: body, pos: 0 };
    // Each node with the depth of its tree: no tree deeper than the limit is
    // ever built (printing, writing and dropping one recurse through it).
    let mut stack: Vec<(Node, usize)> = Vec::new();
    while r.pos < body.len() {
        let t = r.take(1)?[0];
        match t {
            0x00 => {
                // Padding: only zeros may follow.
                if body[r.pos..].iter().any(|&b| b != 0) {
                    return Err(bad("data after the padding"));
                }
                break;
            }
            0x01..=0x04 | 0x10 | 0x18 | 0x50 | 0x51 => {
                stack.push((Node::Literal(r.literal(t, 0)?), 1));
            }
            0xf8..=0xfb => stack.push((Node::Attr(t, r.utf16()?), 1)),
            _ => {
                let (_, arity) =
                    op_text(t).ok_or_else(|| bad(format!("unknown token 0x{t:02x}")))?;
                let missing = || bad("an operator lacks an operand");
                if arity == 1 {
                    let (a, da) = stack.pop().ok_or_else(missing)?;
                    stack.push((Node::Unary(t, Box::new(a)), within(da + 1)?));
                } else {
                    let (b, db) = stack.pop().ok_or_else(missing)?;
                    let (a, da) = stack.pop().ok_or_else(missing)?;
                    let depth = within(da.max(db) + 1)?;
                    stack.push((Node::Binary(t, Box::new(a), Box::new(b)), depth));
                }
            }
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some((n, _)), true) => Ok(n),
        _ => Err(bad("the tokens do not form one expression")),
    }
}

fn put_utf16(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().collect();
    out.extend_from_slice(&((units.len() * 2) as u32).to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn put_literal(out: &mut Vec<u8>, l: &Literal) {
    match l {
        Literal::Int {
            token,
            value,
            sign,
            base,
        } => {
            out.push(*token);
            out.extend_from_slice(&value.to_le_bytes());
            out.push(*sign);
            out.push(*base);
        }
        Literal::Str(s) => {
            out.push(0x10);
            put_utf16(out, s);
        }
        Literal::Octets(o) => {
            out.push(0x18);
            out.extend_from_slice(&(o.len() as u32).to_le_bytes());
            out.extend_from_slice(o);
        }
        Literal::Composite(items) => {
            let mut inner = Vec::new();
            for i in items {
                put_literal(&mut inner, i);
            }
            out.push(0x50);
            out.extend_from_slice(&(inner.len() as u32).to_le_bytes());
            out.extend_from_slice(&inner);
        }
        Literal::Sid(s) => {
            out.push(0x51);
            out.extend_from_slice(&(s.binary_len() as u32).to_le_bytes());
            s.write_binary(out);
        }
    }
}

fn encode(node: &Node, out: &mut Vec<u8>) {
    match node {
        Node::Literal(l) => put_literal(out, l),
        Node::Attr(t, name) => {
            out.push(*t);
            put_utf16(out, name);
        }
        Node::Unary(t, a) => {
            encode(a, out);
            out.push(*t);
        }
        Node::Binary(t, a, b) => {
            encode(a, out);
            encode(b, out);
            out.push(*t);
        }
    }
}

/// Pads application data with zeros to a multiple of 4 bytes, as ACEs hold it.
fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().next_multiple_of(4), 0);
    data
}

// ---------------------------------------------------------------------------
// Printing.

fn print_literal(out: &mut String, l: &Literal, domain: Option<&Sid>) {
    match l {
        Literal::Int {
            value, sign, base, ..
        } => {
            let magnitude = value.unsigned_abs();
            if *sign == 2 || (*value < 0 && *sign == 3) {
                out.push('-');
            } else if *sign == 1 {
                out.push('+');
            }
            match base {
                1 => out.push_str(&format!("0{magnitude:o}")),
                3 => out.push_str(&format!("0x{magnitude:x}")),
                _ => out.push_str(&magnitude.to_string()),
            }
        }
        Literal::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Literal::Octets(o) => {
            out.push('#');
            for b in o {
                out.push_str(&format!("{b:02x}"));
            }
        }
        Literal::Sid(s) => {
            out.push_str("SID(");
            match alias::sid_alias(s, domain) {
                Some(a) => out.push_str(a),
                None => out.push_str(&s.to_string()),
            }
            out.push(')');
        }
        Literal::Composite(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_literal(out, item, domain);
            }
            out.push('}');
        }
    }
}

fn print_node(out: &mut String, n: &Node, domain: Option<&Sid>) {
    match n {
        Node::Literal(l) => print_literal(out, l, domain),
        Node::Attr(t, name) => {
            if let Some((_, p)) = ATTR_PREFIXES.iter().find(|(x, _)| x == t) {
                out.push_str(p);
            }
            out.push_str(name);
        }
        Node::Unary(t, a) => {
            let (op, _) = op_text(*t).unwrap_or(("?", 1));
            out.push('(');
            out.push_str(op);
            if *t != 0xa2 {
                out.push(' ');
            }
            print_node(out, a, domain);
            out.push(')');
        }
        Node::Binary(t, a, b) => {
            let (op, _) = op_text(*t).unwrap_or(("?", 2));
            out.push('(');
            print_node(out, a, domain);
            out.push(' ');
            out.push_str(op);
            out.push(' ');
            print_node(out, b, domain);
            out.push(')');
        }
    }
}

/// Whether a SID read from binary has SDDL text that reads back (the binary
/// form allows a SID without sub-authorities; `S-1-5` does not parse).
fn sid_prints(sid: &Sid) -> bool {
    sid.to_string().parse::<Sid>().is_ok()
}

/// Checks that a tree read from binary can be written as SDDL text that reads back
/// to it: strings without `"`, attribute names the lexer reads as one name, and
/// each operator's operands of the forms the text parser reads.
fn expressible(root: &Node) -> Result<()> {
    let literal_ok = |l: &Literal| -> Result<()> {
        fn check(l: &Literal) -> bool {
            match l {
                Literal::Str(s) => !s.contains('"'),
                // SDDL has no empty list: `{}` does not parse.
                Literal::Composite(items) => !items.is_empty() && items.iter().all(check),
                Literal::Sid(sid) => sid_prints(sid),
                // The sign byte is the text's sign: a '+' of a negative value
                // or a '-' of a positive one would print another number.
                Literal::Int { value, sign, .. } => {
                    !((*sign == 1 && *value < 0) || (*sign == 2 && *value > 0))
                }
                _ => true,
            }
        }
        if check(l) {
            Ok(())
        } else {
            Err(bad(
                "a string holds '\"', a list is empty, a SID has no sub-authority, or an \
                 integer's sign is not its value's, which SDDL cannot express",
            ))
        }
    };
    // An explicit stack: the tree may be as deep as the bound allows.
    let mut todo = vec![root];
    while let Some(n) = todo.pop() {
        match n {
            Node::Literal(l) => literal_ok(l)?,
            Node::Attr(_, name) => {
                let b = name.as_bytes();
                let ok = !b.is_empty()
                    && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b":/._@%".contains(c))
                    && !name.eq_ignore_ascii_case("SID")
                    && !OPERATORS
                        .iter()
                        .any(|(_, s, _)| s.eq_ignore_ascii_case(name));
                if !ok {
                    return Err(bad(format!(
                        "the attribute name {name:?} cannot be written in SDDL"
                    )));
                }
            }
            Node::Unary(t, a) => {
                // What the text parser reads after each operator: `!` any
                // condition, `Exists` an attribute, `Member_of` and the like a value.
                let fits = match t {
                    0xa2 => !matches!(**a, Node::Literal(_)),
                    0x87 | 0x8d => matches!(**a, Node::Attr(..)),
                    _ => matches!(**a, Node::Literal(_)),
                };
                if !fits {
                    return Err(bad(format!(
                        "the operand of {} has a form SDDL cannot express",
                        op_text(*t).map_or("?", |(s, _)| s)
                    )));
                }
                todo.push(a);
            }
            Node::Binary(t, a, b) => {
                // `&&` and `||` join conditions; a relation has an attribute on
                // its left and a value or a prefixed attribute (`@User.`, ...) on
                // its right.
                let fits = if matches!(t, 0xa0 | 0xa1) {
                    !matches!(**a, Node::Literal(_)) && !matches!(**b, Node::Literal(_))
                } else {
                    matches!(**a, Node::Attr(..))
                        && match **b {
                            Node::Literal(_) => true,
                            Node::Attr(token, _) => token != 0xf8,
                            _ => false,
                        }
                };
                if !fits {
                    return Err(bad(format!(
                        "the operands of {} have a form SDDL cannot express",
                        op_text(*t).map_or("?", |(s, _)| s)
                    )));
                }
                todo.push(a);
                todo.push(b);
            }
        }
    }
    Ok(())
}

/// The SDDL text of a callback ACE's condition, enclosed in parentheses as it stands
/// in an ACE string.
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] for data that is not a well-formed condition, also
/// for one nested deeper than [`MAX_CONDITION_DEPTH`].
pub fn condition_to_string(data: &[u8], domain: Option<&Sid>) -> Result<String> {
    let node = decode(data)?;
    if matches!(node, Node::Literal(_)) {
        return Err(bad("a value alone is not a condition"));
    }
    expressible(&node)?;
    let mut out = String::new();
    print_node(&mut out, &node, domain);
    if !out.starts_with('(') {
        out = format!("({out})");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Parsing.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    LBrace,
    RBrace,
    Comma,
    Not,
    And,
    Or,
    Rel(u8),
    Word(String),
    Str(String),
    Octets(Vec<u8>),
    Int(i64, u8, u8),
    /// The text inside `SID( )`.
    SidText(String),
}

fn lex(text: &str) -> Result<Vec<Tok>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = text.get(i..i + 2).unwrap_or("");
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'{' => {
                out.push(Tok::LBrace);
                i += 1;
            }
            b'}' => {
                out.push(Tok::RBrace);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            _ if two == "&&" => {
                out.push(Tok::And);
                i += 2;
            }
            _ if two == "||" => {
                out.push(Tok::Or);
                i += 2;
            }
            _ if ["==", "!=", "<=", ">="].contains(&two) => {
                let t = OPERATORS
                    .iter()
                    .find(|(_, s, _)| *s == two)
                    .map_or(0, |(t, _, _)| *t);
                out.push(Tok::Rel(t));
                i += 2;
            }
            b'<' | b'>' => {
                out.push(Tok::Rel(if c == b'<' { 0x82 } else { 0x84 }));
                i += 1;
            }
            b'!' => {
                out.push(Tok::Not);
                i += 1;
            }
            b'"' => {
                let end = text[i + 1..]
                    .find('"')
                    .ok_or_else(|| bad(format!("unterminated string at {i}")))?;
                out.push(Tok::Str(text[i + 1..i + 1 + end].to_owned()));
                i += end + 2;
            }
            b'#' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_hexdigit() {
                    j += 1;
                }
                let hex = &text[i + 1..j];
                if !hex.len().is_multiple_of(2) {
                    return Err(bad(format!(
                        "octet string at {i} has an odd number of digits"
                    )));
                }
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|k| {
                        u8::from_str_radix(&hex[k..k + 2], 16).map_err(|_| bad("bad octet string"))
                    })
                    .collect::<Result<Vec<u8>>>()?;
                out.push(Tok::Octets(bytes));
                i = j;
            }
            b'+' | b'-' | b'0'..=b'9' => {
                let sign = match c {
                    b'+' => 1,
                    b'-' => 2,
                    _ => 3,
                };
                let mut j = if sign == 3 { i } else { i + 1 };
                let (base, start) = if text[j..].starts_with("0x") || text[j..].starts_with("0X") {
                    (3u8, j + 2)
                } else if b.get(j) == Some(&b'0') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                    (1, j + 1)
                } else {
                    (2, j)
                };
                j = start;
                let radix = [8, 10, 16][usize::from(base - 1)];
                while j < b.len() && (b[j] as char).is_digit(radix) {
                    j += 1;
                }
                let digits = &text[start..j];
                let magnitude = u64::from_str_radix(digits, radix)
                    .map_err(|_| bad(format!("integer at {i} is not a 64-bit number")))?;
                let value = if sign == 2 {
                    0i64.checked_sub_unsigned(magnitude)
                } else {
                    i64::try_from(magnitude).ok()
                }
                .ok_or_else(|| bad(format!("integer at {i} is out of range")))?;
                out.push(Tok::Int(value, sign, base));
                i = j;
            }
            _ if c.is_ascii_alphabetic() || c == b'@' || c == b'_' => {
                let mut j = i;
                // Attribute names may hold letters, digits and : / . _ @ and escapes.
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b":/._@%".contains(&b[j])) {
                    j += 1;
                }
                let word = &text[i..j];
                let rest = text[j..].trim_start();
                if word.eq_ignore_ascii_case("SID") && rest.starts_with('(') {
                    let open = text.len() - rest.len();
                    let close = text[open..]
                        .find(')')
                        .ok_or_else(|| bad(format!("SID( at {i} is not closed")))?;
                    out.push(Tok::SidText(text[open + 1..open + close].trim().to_owned()));
                    i = open + close + 1;
                } else {
                    out.push(Tok::Word(word.to_owned()));
                    i = j;
                }
            }
            _ => return Err(bad(format!("unexpected {:?} at {i}", c as char))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    domain: Option<&'a Sid>,
}

/// A node and the depth of its tree.
type Built = (Node, usize);

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// The whole expression: `||` of `&&` of `!`-negated terms and parenthesized
    /// expressions, `!` binding tightest and `&&` tighter than `||`, both from
    /// the left. Read with explicit stacks, not by recursion, so that nothing a
    /// peer nests can exhaust the thread's stack; the tree it builds, and the
    /// parentheses, are held within [`MAX_CONDITION_DEPTH`].
    fn expression(&mut self) -> Result<Node> {
        /// What waits on the operator stack.
        #[derive(Clone, Copy, PartialEq)]
        enum Op {
            Open,
            Not,
            And,
            Or,
        }
        fn reduce(operands: &mut Vec<Built>, op: Op) -> Result<()> {
            let missing = || bad("an operator lacks an operand");
            let (b, db) = operands.pop().ok_or_else(missing)?;
            let built = match op {
                Op::Not => (Node::Unary(0xa2, Box::new(b)), within(db + 1)?),
                Op::And | Op::Or => {
                    let (a, da) = operands.pop().ok_or_else(missing)?;
                    let token = if op == Op::And { 0xa0 } else { 0xa1 };
                    let node = Node::Binary(token, Box::new(a), Box::new(b));
                    (node, within(da.max(db) + 1)?)
                }
                Op::Open => return Err(bad("expected ')'")),
            };
            operands.push(built);
            Ok(())
        }
        let (mut operands, mut ops): (Vec<Built>, Vec<Op>) = (Vec::new(), Vec::new());
        // Parentheses open now: no deeper than a tree may be (the printed form
        // of a tree nests them less deep than the tree).
        let mut open = 0;
        loop {
            // An operand: negations and opening parentheses, then a term.
            loop {
                match self.peek() {
                    Some(Tok::Not) => ops.push(Op::Not),
                    Some(Tok::Open) => {
                        open = within(open + 1)?;
                        ops.push(Op::Open);
                    }
                    _ => break,
                }
                self.pos += 1;
            }
            operands.push(self.term()?);
            // Then closing parentheses, each ending an operand that the
            // negations before it apply to; then an operator, or the end.
            loop {
                while ops.last() == Some(&Op::Not) {
                    ops.pop();
                    reduce(&mut operands, Op::Not)?;
                }
                if self.peek() != Some(&Tok::Close) || !ops.contains(&Op::Open) {
                    break;
                }
                self.pos += 1;
                open -= 1;
                while let Some(op) = ops.pop().filter(|&op| op != Op::Open) {
                    reduce(&mut operands, op)?;
                }
            }
            let op = match self.peek() {
                Some(Tok::And) => Op::And,
                Some(Tok::Or) => Op::Or,
                _ => break,
            };
            self.pos += 1;
            // Operators of the same or a tighter binding before it go first.
            while let Some(&top) = ops.last() {
                if top == Op::And || (top == Op::Or && op == Op::Or) {
                    ops.pop();
                    reduce(&mut operands, top)?;
                } else {
                    break;
                }
            }
            ops.push(op);
        }
        while let Some(op) = ops.pop() {
            reduce(&mut operands, op)?;
        }
        match (operands.pop(), operands.is_empty()) {
            (Some((node, _)), true) => Ok(node),
            _ => Err(bad("expected an attribute or an operator")),
        }
    }

    /// An attribute (1 deep), or an operation on attributes and values (2 deep;
    /// the depth of its lists is bounded by the parser's nesting).
    fn term(&mut self) -> Result<Built> {
        let Some(Tok::Word(w)) = self.next() else {
            return Err(bad("expected an attribute or an operator"));
        };
        if let Some((t, _, 1)) = OPERATORS
            .iter()
            .find(|(_, s, a)| *a == 1 && s.eq_ignore_ascii_case(&w))
        {
            let operand = if matches!(t, 0x87 | 0x8d) {
                self.attribute()?
            } else {
                Node::Literal(self.value()?)
            };
            return Ok((Node::Unary(*t, Box::new(operand)), 2));
        }
        let attr = attribute_node(&w)?;
        match self.peek().cloned() {
            Some(Tok::Rel(t)) => {
                self.pos += 1;
                Ok((
                    Node::Binary(t, Box::new(attr), Box::new(self.operand()?)),
                    2,
                ))
            }
            Some(Tok::Word(op)) => {
                if let Some((t, _, 2)) = OPERATORS.iter().find(|(_, s, a)| {
                    *a == 2
                        && s.chars().next().is_some_and(char::is_alphabetic)
                        && s.eq_ignore_ascii_case(&op)
                }) {
                    self.pos += 1;
                    Ok((
                        Node::Binary(*t, Box::new(attr), Box::new(self.operand()?)),
                        2,
                    ))
                } else {
                    Err(bad(format!("unknown operator {op:?}")))
                }
            }
            _ => Ok((attr, 1)),
        }
    }

    fn attribute(&mut self) -> Result<Node> {
        match self.next() {
            Some(Tok::Word(w)) => attribute_node(&w),
            _ => Err(bad("expected an attribute name")),
        }
    }

    /// The right side of a relation: an attribute or a value.
    fn operand(&mut self) -> Result<Node> {
        if let Some(Tok::Word(w)) = self.peek()
            && w.starts_with('@')
        {
            let w = w.clone();
            self.pos += 1;
            return attribute_node(&w);
        }
        Ok(Node::Literal(self.value()?))
    }

    /// A value: a scalar, or a `{}` list of values, read with an explicit stack
    /// of the lists open (at most [`MAX_LIST_DEPTH`]).
    fn value(&mut self) -> Result<Literal> {
        let mut open: Vec<Vec<Literal>> = Vec::new();
        loop {
            let mut item = match self.next() {
                Some(Tok::LBrace) => {
                    list_within(open.len() + 1)?;
                    open.push(Vec::new());
                    continue;
                }
                Some(tok) => self.scalar(tok)?,
                None => return Err(bad("expected a value")),
            };
            // After a value: the end of the value, or ',' (a next value) or '}'
            // (the end of a list, which is a value in its turn).
            loop {
                let Some(list) = open.last_mut() else {
                    return Ok(item);
                };
                list.push(item);
                match self.next() {
                    Some(Tok::Comma) => break,
                    Some(Tok::RBrace) => {
                        item = Literal::Composite(open.pop().unwrap_or_default());
                    }
                    _ => return Err(bad("expected ',' or '}' in a list")),
                }
            }
        }
    }

    /// A value that is not a list.
    fn scalar(&self, tok: Tok) -> Result<Literal> {
        match tok {
            Tok::Int(v, sign, base) => Ok(Literal::Int {
                token: 0x04,
                value: v,
                sign,
                base,
            }),
            Tok::Str(s) => Ok(Literal::Str(s)),
            Tok::Octets(o) => Ok(Literal::Octets(o)),
            Tok::SidText(text) => {
                let sid = if text.starts_with("S-") || text.starts_with("s-") {
                    text.parse::<Sid>()?
                } else {
                    alias::alias_sid(&text, self.domain)?
                };
                Ok(Literal::Sid(sid))
            }
            _ => Err(bad("expected a value")),
        }
    }
}

fn attribute_node(w: &str) -> Result<Node> {
    for (t, prefix) in ATTR_PREFIXES {
        if w.len() > prefix.len() && w[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return Ok(Node::Attr(*t, w[prefix.len()..].to_owned()));
        }
    }
    if w.starts_with('@') {
        return Err(bad(format!("unknown attribute prefix in {w:?}")));
    }
    Ok(Node::Attr(0xf8, w.to_owned()))
}

/// Parses the SDDL text of a condition (with or without its enclosing parentheses)
/// to the application data of a callback ACE: `artx`, the tokens in postfix order,
/// zero padding to 4 bytes.
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] naming what is wrong, also for a condition nested
/// deeper than [`MAX_CONDITION_DEPTH`].
pub fn parse_condition(text: &str, domain: Option<&Sid>) -> Result<Vec<u8>> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        domain,
    };
    let node = p.expression()?;
    if p.pos != p.toks.len() {
        return Err(bad("text after the expression"));
    }
    // Accept only what prints back: the same rule in both directions.
    expressible(&node)?;
    let mut out = SIGNATURE.to_vec();
    encode(&node, &mut out);
    Ok(padded(out))
}

// ---------------------------------------------------------------------------
// Resource attributes (CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1).

/// Value types of a resource attribute: SDDL name and binary code.
const CLAIM_TYPES: &[(&str, u16)] = &[
    ("TI", 0x01),
    ("TU", 0x02),
    ("TS", 0x03),
    ("TD", 0x05),
    ("TB", 0x06),
    ("TX", 0x10),
];

/// Parses a resource attribute, `("Name",TYPE,FLAGS,value,...)`, to its binary
/// form.
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] naming what is wrong.
pub fn parse_resource_attribute<'a>(text: &'a str, domain: Option<&Sid>) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidAcl, format!("resource attribute: {why}"));
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| bad("not enclosed in parentheses"))?;
    // Split on commas outside quotes and parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(inner[start..].trim());
    if parts.len() < 4 {
        return Err(bad("needs a name, a type, flags and at least one value"));
    }
    // Names and strings are NUL-terminated in the binary form: no NUL inside.
    let quoted = |v: &'a str| {
        v.strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .filter(|n| !n.contains(['"', '\0']))
    };
    let name = quoted(parts[0]).ok_or_else(|| bad("the name is not a quoted string"))?;
    let ty = CLAIM_TYPES
        .iter()
        .find(|(n, _)| *n == parts[1])
        .map(|(_, c)| *c)
        .ok_or_else(|| bad("the type is not one of TI TU TS TD TB TX"))?;
    let flags = parse_u64(parts[2])
        .and_then(|f| u32::try_from(f).ok())
        .ok_or_else(|| bad("flags are not a 32-bit number"))?;
    let mut values: Vec<Vec<u8>> = Vec::new();
    for v in &parts[3..] {
        values.push(match ty {
            0x01 => {
                let n: i64 = match v.strip_prefix('-') {
                    Some(m) => parse_u64(m).and_then(|m| 0i64.checked_sub_unsigned(m)),
                    None => {
                        parse_u64(v.trim_start_matches('+')).and_then(|m| i64::try_from(m).ok())
                    }
                }
                .ok_or_else(|| bad("a TI value is not a 64-bit integer"))?;
                n.to_le_bytes().to_vec()
            }
            0x02 | 0x06 => {
                let n = parse_u64(v).ok_or_else(|| bad("a TU/TB value is not a 64-bit number"))?;
                if ty == 0x06 && n > 1 {
                    return Err(bad("a TB value is 0 or 1"));
                }
                n.to_le_bytes().to_vec()
            }
            0x03 => {
                let s = quoted(v).ok_or_else(|| bad("a TS value is not a quoted string"))?;
                let mut out = Vec::new();
                for u in s.encode_utf16().chain([0]) {
                    out.extend_from_slice(&u.to_le_bytes());
                }
                out
            }
            0x05 => {
                let s = v
                    .strip_prefix("SID(")
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| bad("a TD value is not SID(...)"))?;
                let sid = if s.starts_with("S-") {
                    s.parse::<Sid>()?
                } else {
                    alias::alias_sid(s, domain)?
                };
                let mut body = Vec::new();
                sid.write_binary(&mut body);
                let mut out = (body.len() as u32).to_le_bytes().to_vec();
                out.extend_from_slice(&body);
                out
            }
            _ => {
                let hex = v.strip_prefix('#').unwrap_or(v);
                if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("a TX value is not hex octets"));
                }
                let body: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or(0))
                    .collect();
                let mut out = (body.len() as u32).to_le_bytes().to_vec();
                out.extend_from_slice(&body);
                out
            }
        });
    }
    // Header, value offsets, then the name and the values.
    let header = 16 + 4 * values.len();
    let mut name_bytes = Vec::new();
    for u in name.encode_utf16().chain([0]) {
        name_bytes.extend_from_slice(&u.to_le_bytes());
    }
    let mut out = Vec::with_capacity(header + name_bytes.len() + 64);
    out.extend_from_slice(&(header as u32).to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    let mut offset = header + name_bytes.len();
    let mut tail = name_bytes;
    for v in &values {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += v.len();
        tail.extend_from_slice(v);
    }
    out.extend_from_slice(&tail);
    Ok(padded(out))
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if v.len() > 1 && v.starts_with('0') => u64::from_str_radix(&v[1..], 8).ok(),
        None => v.parse().ok(),
    }
}

/// Prints a resource attribute's binary form as SDDL, `("Name",TYPE,FLAGS,values)`.
///
/// # Errors
/// [`ErrorKind::InvalidAcl`] for data that is not a well-formed attribute.
pub fn resource_attribute_to_string(data: &[u8], domain: Option<&Sid>) -> Result<String> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidAcl, format!("resource attribute: {why}"));
    let word = |at: usize| -> Result<u32> {
        data.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    let utf16z = |at: usize| -> Result<String> {
        let mut units = Vec::new();
        let mut i = at;
        loop {
            let s = data
                .get(i..i + 2)
                .ok_or_else(|| bad("unterminated string"))?;
            let u = u16::from_le_bytes([s[0], s[1]]);
            if u == 0 {
                break;
            }
            units.push(u);
            i += 2;
        }
        String::from_utf16(&units).map_err(|_| bad("a string is not UTF-16"))
    };
    let printable = |s: String| -> Result<String> {
        if s.contains('"') {
            Err(bad("a string holds '\"', which SDDL cannot express"))
        } else {
            Ok(s)
        }
    };
    let name = printable(utf16z(word(0)? as usize)?)?;
    let ty = u16::from_le_bytes([
        *data.get(4).ok_or_else(|| bad("truncated"))?,
        *data.get(5).ok_or_else(|| bad("truncated"))?,
    ]);
    let flags = word(8)?;
    let count = word(12)? as usize;
    if count == 0 || count > data.len() / 4 {
        return Err(bad("bad value count"));
    }
    let ty_name = CLAIM_TYPES
        .iter()
        .find(|(_, c)| *c == ty)
        .map(|(n, _)| *n)
        .ok_or_else(|| bad("unknown value type"))?;
    let mut out = format!("(\"{name}\",{ty_name},0x{flags:x}");
    for k in 0..count {
        let at = word(16 + 4 * k)? as usize;
        out.push(',');
        let eight = || -> Result<[u8; 8]> {
            data.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("truncated value"))
        };
        match ty {
            0x01 => out.push_str(&i64::from_le_bytes(eight()?).to_string()),
            0x02 => out.push_str(&u64::from_le_bytes(eight()?).to_string()),
            0x06 => match u64::from_le_bytes(eight()?) {
                b @ (0 | 1) => out.push_str(&b.to_string()),
                _ => return Err(bad("a TB value is 0 or 1")),
            },
            0x03 => out.push_str(&format!("\"{}\"", printable(utf16z(at)?)?)),
            _ => {
                let len = word(at)? as usize;
                let body = data
                    .get(at + 4..at + 4 + len)
                    .ok_or_else(|| bad("truncated value"))?;
                if ty == 0x05 {
                    let (sid, _) = Sid::read_binary(body)?;
                    if !sid_prints(&sid) {
                        return Err(bad("a TD value is a SID SDDL cannot express"));
                    }
                    out.push_str("SID(");
                    out.push_str(
                        &alias::sid_alias(&sid, domain)
                            .map_or_else(|| sid.to_string(), str::to_owned),
                    );
                    out.push(')');
                } else {
                    out.push('#');
                    for b in body {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
        }
    }
    out.push(')');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        condition_to_string(&parse_condition(text, None).unwrap(), None).unwrap()
    }

    #[test]
    fn conditions_round_trip_in_canonical_form() {
        assert_eq!(round("(@User.Title == \"PM\")"), "(@User.Title == \"PM\")");
        assert_eq!(
            round(
                "(@User.Title==\"PM\" && (@User.Division==\"Finance\" || @User.Division ==\"Sales\"))"
            ),
            "((@User.Title == \"PM\") && ((@User.Division == \"Finance\") || (@User.Division == \"Sales\")))"
        );
        assert_eq!(
            round("(Member_of {SID(BA), SID(S-1-5-32-545)})"),
            "(Member_of {SID(BA), SID(BU)})"
        );
        assert_eq!(round("(Member_of SID(BA))"), "(Member_of SID(BA))");
        assert_eq!(
            round("(!(Exists @Resource.Secrecy))"),
            "(!(Exists @Resource.Secrecy))"
        );
        assert_eq!(
            round("(@Device.Clearance >= 0x10)"),
            "(@Device.Clearance >= 0x10)"
        );
        assert_eq!(round("(@User.Level < -3)"), "(@User.Level < -3)");
        assert_eq!(
            round("(@User.Proj Any_of {\"A\", \"B\"})"),
            "(@User.Proj Any_of {\"A\", \"B\"})"
        );
        assert_eq!(
            round("(@Resource.Tag Contains @User.Tags)"),
            "(@Resource.Tag Contains @User.Tags)"
        );
        assert_eq!(round("(Title)"), "(Title)");
        assert_eq!(round("(@User.Key == #0a0b)"), "(@User.Key == #0a0b)");
    }

    #[test]
    fn binary_form_is_postfix_with_signature_and_padding() {
        let data = parse_condition("(Member_of {SID(WD)})", None).unwrap();
        assert_eq!(&data[..4], b"artx");
        assert_eq!(data.len() % 4, 0);
        // composite(0x50), then the operator last.
        assert_eq!(data[4], 0x50);
        let last = data.iter().rposition(|&b| b != 0).unwrap();
        assert_eq!(data[last], 0x89);
    }

    /// Fuzzing found binary trees the text parser cannot read back (the printed
    /// SDDL of `Not_Exists` over a negation did not parse): a binary condition
    /// prints only in a shape the text reads.
    #[test]
    fn binary_shapes_sddl_cannot_express_are_refused() {
        let attr = |name: &str| {
            let mut out = vec![0xf8];
            put_utf16(&mut out, name);
            out
        };
        let int = {
            let mut out = Vec::new();
            put_literal(
                &mut out,
                &Literal::Int {
                    token: 4,
                    value: 1,
                    sign: 3,
                    base: 2,
                },
            );
            out
        };
        let form = |parts: &[&[u8]]| padded([b"artx".as_slice(), &parts.concat()].concat());
        for (what, data) in [
            (
                "Not_Exists over a negation",
                form(&[&attr("a"), &[0xa2, 0x8d]]),
            ),
            ("&& of values", form(&[&int, &int, &[0xa0]])),
            (
                "a relation with a value on its left",
                form(&[&int, &attr("a"), &[0x80]]),
            ),
            (
                "a relation with a local attribute on its right",
                form(&[&attr("a"), &attr("b"), &[0x80]]),
            ),
            ("Member_of an attribute", form(&[&attr("a"), &[0x89]])),
            ("a value alone", form(&[&int])),
            (
                "Member_of an empty list",
                form(&[&[0x50, 0, 0, 0, 0, 0x89]]),
            ),
            (
                "a SID without sub-authorities",
                form(&[&[0x51, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x89]]),
            ),
            (
                "a '+' integer of a negative value",
                form(&[&attr("a"), &[0x04], &i64::MIN.to_le_bytes(), &[1, 3, 0x80]]),
            ),
            (
                "a '-' integer of a positive value",
                form(&[&attr("a"), &[0x04], &5i64.to_le_bytes(), &[2, 2, 0x80]]),
            ),
        ] {
            let e = condition_to_string(&data, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidAcl, "{what}");
        }
        // The shapes that do print read back.
        for data in [
            form(&[&attr("a"), &[0xa2, 0xa2]]),
            form(&[&attr("a"), &int, &[0x80], &attr("b"), &[0xa1]]),
        ] {
            let text = condition_to_string(&data, None).unwrap();
            assert_eq!(parse_condition(&text, None).unwrap(), data, "{text}");
        }
    }

    #[test]
    fn malformed_conditions_are_errors() {
        for bad in [
            "(",
            "(@User.A ==)",
            "(@User.A == \"x\" &&)",
            "(@Nope.A == 1)",
            "(Member_of)",
            "(@User.A == \"x)",
            "(A B)",
        ] {
            assert!(parse_condition(bad, None).is_err(), "{bad}");
        }
        assert!(condition_to_string(b"artx\x80", None).is_err());
        assert!(condition_to_string(b"xxxx", None).is_err());
        assert!(condition_to_string(b"artx\x10\xff\xff\xff\xff", None).is_err());
    }

    /// Fuzzing found a boolean (TB) resource attribute of 0xfe in binary that
    /// printed as SDDL the text parser refuses.
    #[test]
    fn a_boolean_resource_attribute_other_than_0_or_1_is_refused() {
        let one = parse_resource_attribute("(\"Flag\",TB,0x0,1)", None).unwrap();
        assert_eq!(
            resource_attribute_to_string(&one, None).unwrap(),
            "(\"Flag\",TB,0x0,1)"
        );
        let value_at = u32::from_le_bytes(one[16..20].try_into().unwrap()) as usize;
        let mut two = one.clone();
        two[value_at] = 0xfe;
        let e = resource_attribute_to_string(&two, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidAcl);
    }

    #[test]
    fn resource_attributes_round_trip() {
        for text in [
            "(\"Project\",TS,0x0,\"Windows\",\"SQL\")",
            "(\"Secrecy\",TU,0x0,3)",
            "(\"Level\",TI,0x10,-5,7)",
            "(\"Owner\",TD,0x0,SID(BA))",
            "(\"Blob\",TX,0x0,#0102ff)",
            "(\"Flag\",TB,0x0,1)",
        ] {
            let data = parse_resource_attribute(text, None).unwrap();
            assert_eq!(resource_attribute_to_string(&data, None).unwrap(), text);
        }
        assert!(parse_resource_attribute("(\"X\",TQ,0,1)", None).is_err());
        assert!(parse_resource_attribute("(\"X\",TB,0,2)", None).is_err());
        assert!(parse_resource_attribute("(\"X\",TS,0,\"a\0b\")", None).is_err());
        assert!(parse_resource_attribute("(\"X\",TS,0,\"a\"b\")", None).is_err());
        assert!(resource_attribute_to_string(&[0; 3], None).is_err());
    }
}
