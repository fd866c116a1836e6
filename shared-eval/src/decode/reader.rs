//! A strict JSON reader over bytes: the tokens the blob decoder asks for, in the order it asks.
//!
//! It accepts what serde_json accepts (RFC 8259: no trailing commas, no leading zeros, no
//! control characters in strings, valid UTF-8, surrogate pairs in `\u` escapes) and nests at
//! most [`MAX_DEPTH`] levels, serde_json's own limit, so a hostile blob cannot exhaust the Wasm
//! stack. Values of no fixed shape (variant values, metadata, operands, and at the edge whole
//! request bodies and token claims) are read into serde_json's `Value` exactly as serde_json
//! reads them ([`Reader::value`]), so the edge links no serde deserializer at all.

use alloc::{borrow::Cow, string::String, vec::Vec};
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects read (serde_json's recursion limit).
pub(crate) const MAX_DEPTH: u32 = 128;

/// Why bytes are not the JSON asked for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    what: Cow<'static, str>,
    at: usize,
}

impl JsonError {
    /// The offset of the byte where reading failed.
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl core::error::Error for JsonError {}

pub(crate) type Result<T> = core::result::Result<T, JsonError>;

/// A cursor over JSON text. Every read skips the whitespace before its token.
pub(crate) struct Reader<'a> {
    /// The whole text, checked to be UTF-8 once (as serde_json checks a borrowed `RawValue`),
    /// so strings are slices of it.
    src: &'a str,
    text: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Result<Reader<'a>> {
        let src = core::str::from_utf8(text).map_err(|e| JsonError {
            what: "invalid UTF-8".into(),
            at: e.valid_up_to(),
        })?;
        Ok(Reader {
            src,
            text,
            pos: 0,
            depth: 0,
        })
    }

    /// The text from `start` to the current position (both on character boundaries: they
    /// are next to ASCII bytes).
    // `#[inline]` on the smallest steps: the worker compiles this crate at opt-level `s`, where
    // they would otherwise stay calls (a decode then costs ~2% more instructions).
    #[inline]
    fn slice(&self, start: usize) -> &'a str {
        self.src.get(start..self.pos).unwrap_or_default()
    }

    /// An error at the current position.
    pub(crate) fn error<T>(&self, what: impl Into<Cow<'static, str>>) -> Result<T> {
        Err(JsonError {
            what: what.into(),
            at: self.pos,
        })
    }

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.error("trailing characters"),
        }
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next token's first byte, not consumed.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn consume(&mut self, byte: u8, what: &'static str) -> Result<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            self.error(what)
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        self.skip_whitespace();
        let end = self.pos + word.len();
        if self.text.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            self.error("expected a value")
        }
    }

    fn enter(&mut self) -> Result<()> {
        // serde_json refuses the 128th level: so does this.
        if self.depth + 1 >= MAX_DEPTH {
            return self.error("nested too deeply");
        }
        self.depth += 1;
        Ok(())
    }

    /// Reads an object, handing each key to `field`, which must read (or [skip](Self::skip))
    /// the value.
    pub(crate) fn object(
        &mut self,
        field: &mut dyn FnMut(&mut Reader<'a>, &str) -> Result<()>,
    ) -> Result<()> {
        self.members(true, field)
    }

    /// [`Reader::object`]; with `decode_keys` false, keys are only skipped (and `field` gets
    /// an empty one).
    fn members(
        &mut self,
        decode_keys: bool,
        field: &mut dyn FnMut(&mut Reader<'a>, &str) -> Result<()>,
    ) -> Result<()> {
        self.consume(b'{', "expected an object")?;
        self.enter()?;
        if !self.eat(b'}') {
            loop {
                if self.peek() != Some(b'"') {
                    return self.error("expected a key");
                }
                let key = if decode_keys {
                    self.str()?
                } else {
                    self.skip_str()?;
                    Cow::Borrowed("")
                };
                self.consume(b':', "expected `:`")?;
                field(self, &key)?;
                if self.eat(b',') {
                    continue;
                }
                self.consume(b'}', "expected `,` or `}`")?;
                break;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array, `item` reading each element.
    pub(crate) fn array(
        &mut self,
        item: &mut dyn FnMut(&mut Reader<'a>) -> Result<()>,
    ) -> Result<()> {
        self.consume(b'[', "expected an array")?;
        self.enter()?;
        if !self.eat(b']') {
            loop {
                item(self)?;
                if self.eat(b',') {
                    continue;
                }
                self.consume(b']', "expected `,` or `]`")?;
                break;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// An array of exactly `N` elements read in turn by `item(reader, index)` (tuples).
    pub(crate) fn tuple<const N: usize>(
        &mut self,
        item: &mut dyn FnMut(&mut Reader<'a>, usize) -> Result<()>,
    ) -> Result<()> {
        let mut count = 0;
        self.array(&mut |r| {
            if count == N {
                return r.error("too many elements");
            }
            item(r, count)?;
            count += 1;
            Ok(())
        })?;
        if count == N {
            Ok(())
        } else {
            self.error("too few elements")
        }
    }

    /// An array, each element read by `item` (a function, not a closure: one instance of
    /// this per element type).
    pub(crate) fn vec<T>(&mut self, item: fn(&mut Reader<'a>) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.array(&mut |r| {
            out.push(item(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Consumes a `null` if one is next: whether it was.
    pub(crate) fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null").map(|()| true)
        } else {
            Ok(false)
        }
    }

    /// The start of an externally tagged enum (serde's default representation): `"name"` for
    /// a variant without data, `{"name": data}` otherwise. Gives the name and whether data
    /// follows; the caller reads the data, then calls [`Reader::end_tag`].
    pub(crate) fn tag(&mut self) -> Result<(Cow<'a, str>, bool)> {
        match self.peek() {
            Some(b'"') => Ok((self.str()?, false)),
            Some(b'{') => {
                self.pos += 1;
                self.enter()?;
                if self.peek() != Some(b'"') {
                    return self.error("expected a variant name");
                }
                let name = self.str()?;
                self.consume(b':', "expected `:`")?;
                Ok((name, true))
            }
            _ => self.error("expected a string or an object"),
        }
    }

    /// The end of what [`Reader::tag`] started.
    pub(crate) fn end_tag(&mut self, has_data: bool) -> Result<()> {
        if has_data {
            self.consume(b'}', "expected `}` after the variant")?;
            self.depth -= 1;
        }
        Ok(())
    }

    /// For a variant without data: its data, if written, must be `null` (serde_json accepts
    /// `{"name": null}` for `"name"`).
    pub(crate) fn unit(&mut self, has_data: bool) -> Result<()> {
        if has_data {
            self.literal(b"null")?;
        }
        Ok(())
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| false),
            _ => self.error("expected a boolean"),
        }
    }

    /// An integer of at most `max` read into an unsigned field: as serde refuses them, a
    /// float (`1.0`, `1e2`, `-0`) and a negative number do not fit.
    fn uint(&mut self, max: u64) -> Result<u64> {
        match self.number_value()?.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => self.error("expected an integer in range"),
        }
    }

    /// An integer read into a signed field (same rules as [`Reader::uint`]).
    pub(crate) fn i64(&mut self) -> Result<i64> {
        match self.number_value()?.as_i64() {
            Some(n) => Ok(n),
            None => self.error("expected an integer in range"),
        }
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        self.uint(u64::MAX)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        // The bound was just checked: the conversion cannot fail.
        self.uint(u32::MAX.into()).map(|v| v as u32)
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        self.uint(u16::MAX.into()).map(|v| v as u16)
    }

    /// A number as a float.
    pub(crate) fn f64(&mut self) -> Result<f64> {
        match self.number_value()?.as_f64() {
            Some(n) => Ok(n),
            None => self.error("number out of range"),
        }
    }

    /// A number as serde_json reads it: an integer token is a `u64` when it fits, a negative
    /// one an `i64` when it fits (but `-0` is the float `-0.0`); anything else is a float,
    /// parsed by core, correctly rounded, as serde_json parses with its `float_roundtrip`
    /// feature (the workspace enables it: without it serde_json can be one ulp off, and its
    /// parser would link serde's error formatting into the worker).
    fn number_value(&mut self) -> Result<Number> {
        self.skip_whitespace();
        let start = self.pos;
        self.number()?;
        let token = self.text.get(start..self.pos).unwrap_or_default();
        let (negative, digits) = match token.split_first() {
            Some((b'-', digits)) => (true, digits),
            _ => (false, token),
        };
        // `None` for a fraction, an exponent or more than a u64: those are floats.
        let magnitude = digits.iter().try_fold(0u64, |n, &d| {
            let digit = d.is_ascii_digit().then(|| u64::from(d - b'0'))?;
            n.checked_mul(10)?.checked_add(digit)
        });
        match (negative, magnitude) {
            (false, Some(n)) => return Ok(n.into()),
            (true, Some(n)) if n != 0 && n <= 1 << 63 => {
                return Ok((0i64.wrapping_sub_unsigned(n)).into());
            }
            _ => {}
        }
        match core::str::from_utf8(token)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .and_then(Number::from_f64)
        {
            Some(n) => Ok(n),
            None => Err(JsonError {
                what: "number out of range".into(),
                at: start,
            }),
        }
    }

    /// Skips a number by JSON's grammar.
    fn number(&mut self) -> Result<()> {
        let digits = |r: &mut Reader<'_>| {
            let start = r.pos;
            while let Some(b'0'..=b'9') = r.text.get(r.pos) {
                r.pos += 1;
            }
            r.pos - start
        };
        if self.text.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.text.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.error("expected a number"),
        }
        if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.error("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.text.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.text.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.error("invalid number");
            }
        }
        Ok(())
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.str().map(Cow::into_owned)
    }

    /// A string, borrowed from the text unless it has escapes.
    pub(crate) fn str(&mut self) -> Result<Cow<'a, str>> {
        self.consume(b'"', "expected a string")?;
        let start = self.pos;
        loop {
            self.skip_plain();
            match self.text.get(self.pos).copied() {
                Some(b'"') => break,
                Some(b'\\') => return self.escaped(start).map(Cow::Owned),
                Some(0..0x20) => return self.error("control character in a string"),
                Some(_) => self.pos += 1,
                None => return self.error("unterminated string"),
            }
        }
        let text = self.slice(start);
        self.pos += 1;
        Ok(Cow::Borrowed(text))
    }

    /// Advances to the next byte inside a string that is not plain text: a quote, a backslash,
    /// a control character (or the end). Eight bytes per step, as serde_json scans: strings
    /// are most of a blob's bytes.
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
        // Flags the bytes of `v` that are zero; the lowest flag is always exact.
        let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH_BITS;
        while let Some(chunk) = self.text.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
            let special = zero_bytes(word ^ (ONES * u64::from(b'"')))
                | zero_bytes(word ^ (ONES * u64::from(b'\\')))
                | (word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS);
            if special != 0 {
                self.pos += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
        while let Some(&byte) = self.text.get(self.pos) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                return;
            }
            self.pos += 1;
        }
    }

    /// The rest of a string from `start` (its first byte after the quote), with escapes.
    fn escaped(&mut self, start: usize) -> Result<String> {
        let mut out = String::new();
        let mut run = start;
        loop {
            self.skip_plain();
            match self.text.get(self.pos).copied() {
                Some(b'"') => {
                    out.push_str(self.slice(run));
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(self.slice(run));
                    let escape = self.text.get(self.pos + 1).copied();
                    self.pos += 2;
                    out.push(match escape {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => {
                            self.pos -= 1;
                            return self.error("invalid escape");
                        }
                    });
                    run = self.pos;
                }
                Some(0..0x20) => return self.error("control character in a string"),
                Some(_) => self.pos += 1,
                None => return self.error("unterminated string"),
            }
        }
    }

    /// The character of a `\u` escape whose four hex digits start at `pos`, a surrogate pair
    /// taking the `\uXXXX` that follows.
    fn unicode_escape(&mut self) -> Result<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if self.text.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return self.error("lone leading surrogate in a \\u escape");
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return self.error("invalid surrogate pair in a \\u escape");
                }
                0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.error("lone trailing surrogate in a \\u escape"),
            _ => u32::from(high),
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.error("invalid \\u escape"),
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let mut value = 0u16;
        for _ in 0..4 {
            let digit = match self.text.get(self.pos).copied() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return self.error("invalid \\u escape"),
            };
            value = (value << 4) | u16::from(digit);
            self.pos += 1;
        }
        Ok(value)
    }

    /// Skips one value of any shape, as serde_json skips a value it ignores: the syntax is
    /// checked, but not the code points of `\u` escapes inside strings.
    pub(crate) fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'{') => self.members(false, &mut |r, _| r.skip()),
            Some(b'[') => self.array(&mut |r| r.skip()),
            Some(b'"') => self.skip_str(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => self.number(),
            None => self.error("expected a value"),
        }
    }

    /// Skips a string (see [`Reader::skip`]).
    fn skip_str(&mut self) -> Result<()> {
        self.consume(b'"', "expected a string")?;
        loop {
            self.skip_plain();
            match self.text.get(self.pos).copied() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => match self.text.get(self.pos + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                    Some(b'u') => {
                        self.pos += 2;
                        self.hex4()?;
                    }
                    _ => {
                        self.pos += 1;
                        return self.error("invalid escape");
                    }
                },
                Some(0..0x20) => return self.error("control character in a string"),
                Some(_) => self.pos += 1,
                None => return self.error("unterminated string"),
            }
        }
    }

    /// The next value decoded by `read`, with its bytes. When `read` refuses a value that is
    /// still JSON, its error is the second half (and the value is skipped); only what is not
    /// JSON fails the whole.
    pub(crate) fn attempt<T>(
        &mut self,
        read: fn(&mut Reader<'a>) -> Result<T>,
    ) -> Result<(&'a [u8], Result<T>)> {
        self.skip_whitespace();
        let (start, depth) = (self.pos, self.depth);
        let value = match read(self) {
            Ok(value) => Ok(value),
            Err(error) => {
                (self.pos, self.depth) = (start, depth);
                self.skip()?;
                Err(error)
            }
        };
        Ok((self.text.get(start..self.pos).unwrap_or_default(), value))
    }

    /// A value of any shape, as serde_json reads it (a key given twice keeps its last value).
    pub(crate) fn value(&mut self) -> Result<Value> {
        Ok(match self.peek() {
            Some(b'{') => {
                let mut map = Map::new();
                self.object(&mut |r, key| {
                    let value = r.value()?;
                    map.insert(key.into(), value);
                    Ok(())
                })?;
                Value::Object(map)
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(&mut |r| {
                    items.push(r.value()?);
                    Ok(())
                })?;
                Value::Array(items)
            }
            Some(b'"') => Value::String(self.string()?),
            Some(b't' | b'f') => Value::Bool(self.bool()?),
            Some(b'n') => {
                self.literal(b"null")?;
                Value::Null
            }
            Some(_) => Value::Number(self.number_value()?),
            None => return self.error("expected a value"),
        })
    }
}
