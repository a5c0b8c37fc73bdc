//! DynamoDB's Number (the `N` attribute type): an exact decimal, its text forms, its arithmetic
//! and its order-preserving key encoding.
//!
//! # What a Number is
//! An exact decimal of at most [`MAX_DIGITS`] (38) significant digits whose *adjusted exponent*
//! (the power of ten of its leading digit) lies in [`MIN_ADJUSTED_EXPONENT`]`..=`
//! [`MAX_ADJUSTED_EXPONENT`] (-130..=125), or zero: nonzero magnitudes run from `1E-130` to
//! `9.9999999999999999999999999999999999999E+125`. Leading and trailing zeros are not
//! significant, so `1.50`, `1.5` and `15E-1` are one number, and `-0` is 0.
//!
//! # Invariants
//! A [`Number`] is `±mantissa × 10^exponent` and is always canonical, so the derived `Eq` and
//! `Hash` are numeric equality and each value has exactly one serialised and one key encoding:
//! - zero is `(negative: false, mantissa: 0, exponent: 0)`;
//! - otherwise `mantissa` has no trailing zero digit, is below 10^38, and the adjusted exponent
//!   `exponent + digits(mantissa) - 1` is in -130..=125 (so `exponent` is in -167..=125).
//!
//! Every constructor (parsing, arithmetic, deserialising, key decoding) establishes them or
//! fails; `invariant!` checks them where a Number is built.
//!
//! # Errors
//! Out-of-range input and results are errors, never rounded. A value both out of range and too
//! precise is reported as out of range ([`NumberError::Overflow`] / [`NumberError::Underflow`]
//! before [`NumberError::TooPrecise`]): `9.9999999999999999999999999999999999999E+125 + 1E+125`
//! is an overflow, as in DynamoDB (and in dynalite, the emulator built by probing DynamoDB,
//! which checks magnitude before digits).
//!
//! # Wide arithmetic: no crate
//! [`Number::checked_add`] needs no big-integer crate. Aligning two mantissas (each < 10^38)
//! whose last digits are `s` places apart gives `big·10^s ± small`; when `s > 38` the exact
//! result always needs more than 38 digits (the smaller operand lies wholly below the larger's
//! last digit), so it is [`NumberError::TooPrecise`] without being computed, and when `s ≤ 38`
//! the result is below 10^77 and fits two `u128` limbs in base 10^38 (`high·10^38 + low`,
//! each limb < 10^38 and so below `u128::MAX`). That is exact, allocation-free and dependency-free,
//! where `bigdecimal`/`num-bigint` would allocate on every addition for no extra exactness. The
//! tests use `bigdecimal` as an independent oracle.
//!
//! # Key encoding ([`Number::encode_ordered`])
//! Byte-wise lexicographic order of encodings is numeric order, no encoding is a proper prefix
//! of another (a number can be followed by more bytes in a composite key), and equal numbers
//! encode equally. The format, at most [`MAX_ENCODED_LEN`] (22) bytes:
//! - zero: the single byte `0x02`;
//! - positive: `0x03`, then the adjusted exponent biased by 130 (`0x00` for -130 … `0xFF` for
//!   125), then the significant digits as base-100 pairs, each pair `p` (0..=99) as the byte
//!   `p + 1` (an odd count pads its last pair with a 0 digit: `5` is the pair 50), then the
//!   terminator `0x00`, which sorts before every pair byte so that a shorter digit string sorts
//!   first (`1.5` before `1.5001`);
//! - negative: `0x01`, then the positive encoding of its magnitude after the class byte with
//!   every byte inverted (`!b`), which reverses the order of magnitudes (sound because those
//!   encodings are prefix-free) and makes the terminator `0xFF`.
//!
//! So `1` is `03 82 0B 00`, `-1` is `01 7D F4 FF`, `1.5` is `03 82 10 00`. Decoding accepts exactly
//! the canonical encodings: digit bytes 1..=100, a leading pair ≥ 10 (no leading zero digit), a
//! last pair ≠ 00 (no trailing zero digit), at most 19 pairs.
//!
//! # Text
//! [`Number::parse`] accepts `[+-]? digits [. digits]? ([eE] [+-]? digits)?` where either side of
//! the point may be empty but not both; nothing else (no whitespace, `NaN`, `Infinity`, hex).
//! Exponents of any length are read saturating, so `1e99999999999999999999` is an overflow and
//! `0e999999999` is 0. `Display` prints plain notation without an exponent, as DynamoDB returns
//! numbers (`100`, `0.5`, `-12.034`), and `parse(&n.to_string()) == n`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The most significant digits a Number holds.
pub const MAX_DIGITS: u32 = 38;
/// The largest adjusted exponent (power of ten of the leading digit) of a nonzero Number.
pub const MAX_ADJUSTED_EXPONENT: i32 = 125;
/// The smallest adjusted exponent of a nonzero Number.
pub const MIN_ADJUSTED_EXPONENT: i32 = -130;
/// The longest key encoding: class, exponent, 19 digit pairs, terminator.
pub const MAX_ENCODED_LEN: usize = 22;

/// How much of a rejected text [`NumberError::NotANumber`] quotes (characters).
const QUOTED_TEXT_CHARS: usize = 40;

/// 10^0 ..= 10^38; 10^38 < 2^127, so every entry and any sum of two entries fits a `u128`.
const POW10: [u128; 39] = {
    let mut table = [1u128; 39];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};
/// 10^38: one past the largest mantissa, and the base of [`Number::from_wide`]'s limbs.
const TEN_POW_38: u128 = POW10[38];

/// Parsed exponents saturate here. No text fits in memory with as many digits as this, so a
/// saturated exponent is out of range whatever the digits before it.
const EXPONENT_CAP: i128 = 1_000_000_000_000_000_000_000_000_000_000;

const CLASS_NEGATIVE: u8 = 0x01;
const CLASS_ZERO: u8 = 0x02;
const CLASS_POSITIVE: u8 = 0x03;
const TERMINATOR: u8 = 0x00;
/// The most base-100 pairs a mantissa has (38 digits).
const MAX_PAIRS: usize = 19;

/// An exact decimal as DynamoDB's `N` type holds it; see the module documentation.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    mantissa: u128,
    exponent: i16,
}

/// Why a text or a computation does not give a Number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The text is not a decimal number (empty, garbage, `NaN`, whitespace, ...).
    #[error("{text:?} is not a decimal number")]
    NotANumber {
        /// The text given, cut to its first 40 characters.
        text: String,
    },
    /// The exact value needs more significant digits than a Number holds.
    #[error("{digits} significant digits; a number holds at most {max}", max = MAX_DIGITS)]
    TooPrecise {
        /// Significant digits of the exact value.
        digits: usize,
    },
    /// The magnitude is above the largest, 9.9999999999999999999999999999999999999E+125.
    #[error("magnitude above the largest number, 9.9999999999999999999999999999999999999E+125")]
    Overflow,
    /// The nonzero magnitude is below the smallest, 1E-130.
    #[error("nonzero magnitude below the smallest number, 1E-130")]
    Underflow,
}

/// Why bytes are not the key encoding of a Number ([`Number::decode_ordered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the encoding does.
    #[error("encoded number is truncated")]
    Truncated,
    /// The first byte is not a class byte (negative, zero, positive).
    #[error("encoded number has unknown class byte {0:#04x}")]
    UnknownClass(u8),
    /// A digit byte is outside 1..=100 (after un-inverting a negative).
    #[error("encoded number has invalid digit byte {0:#04x}")]
    InvalidDigit(u8),
    /// Well-formed bytes no encoder writes: no digits, a leading or trailing zero digit, or more
    /// than 38 digits.
    #[error("encoded number is not canonical")]
    NotCanonical,
}

/// Decimal digits of `value` (0 for 0).
fn digit_count(value: u128) -> u32 {
    value.checked_ilog10().map_or(0, |log| log + 1)
}

/// Trailing zero digits of a nonzero `value`.
fn trailing_zeros(mut value: u128) -> u32 {
    let mut zeros = 0;
    while value != 0 && value.is_multiple_of(10) {
        value /= 10;
        zeros += 1;
    }
    zeros
}

/// 10^`n` for `n` ≤ 38; callers keep `n` in range by construction.
fn pow10(n: u32) -> u128 {
    POW10[n as usize]
}

/// Whether the parts are a canonical Number (the module's invariants).
fn is_canonical(negative: bool, mantissa: u128, exponent: i16) -> bool {
    if mantissa == 0 {
        return !negative && exponent == 0;
    }
    let adjusted = i32::from(exponent) + digit_count(mantissa) as i32 - 1;
    !mantissa.is_multiple_of(10)
        && mantissa < TEN_POW_38
        && (MIN_ADJUSTED_EXPONENT..=MAX_ADJUSTED_EXPONENT).contains(&adjusted)
}

/// The range check shared by parsing and arithmetic: magnitude first, then digits.
fn check_range(adjusted: i128, digits: i128) -> Result<(), NumberError> {
    if adjusted > i128::from(MAX_ADJUSTED_EXPONENT) {
        return Err(NumberError::Overflow);
    }
    if adjusted < i128::from(MIN_ADJUSTED_EXPONENT) {
        return Err(NumberError::Underflow);
    }
    if digits > i128::from(MAX_DIGITS) {
        return Err(NumberError::TooPrecise {
            digits: usize::try_from(digits).unwrap_or(usize::MAX),
        });
    }
    Ok(())
}

impl Number {
    /// Zero.
    pub const fn zero() -> Number {
        Number {
            negative: false,
            mantissa: 0,
            exponent: 0,
        }
    }

    /// Builds a Number from parts the caller has made canonical.
    fn canonical(negative: bool, mantissa: u128, exponent: i16) -> Number {
        invariant!(
            is_canonical(negative, mantissa, exponent),
            "non-canonical number ({negative}, {mantissa}, {exponent})"
        );
        Number {
            negative,
            mantissa,
            exponent,
        }
    }

    /// The Number with these parts, if they are canonical (deserialisation's check).
    fn from_parts(negative: bool, mantissa: u128, exponent: i16) -> Option<Number> {
        is_canonical(negative, mantissa, exponent)
            .then(|| Number::canonical(negative, mantissa, exponent))
    }

    /// The exact Number `±(high·10^38 + low)·10^exponent` (`low` < 10^38, `high` ≤ 10^38), or
    /// why there is none.
    fn from_wide(
        negative: bool,
        high: u128,
        low: u128,
        exponent: i32,
    ) -> Result<Number, NumberError> {
        invariant!(low < TEN_POW_38 && high <= TEN_POW_38);
        if high == 0 && low == 0 {
            return Ok(Number::zero());
        }
        let (digits, zeros) = match (high, low) {
            (0, low) => (digit_count(low), trailing_zeros(low)),
            (high, 0) => (digit_count(high) + 38, 38 + trailing_zeros(high)),
            (high, low) => (digit_count(high) + 38, trailing_zeros(low)),
        };
        let adjusted = i128::from(exponent) + i128::from(digits) - 1;
        check_range(adjusted, i128::from(digits - zeros))?;
        // At most 38 significant digits remain, so the trimmed value fits one limb: in the last
        // case `zeros` ≥ digits(high), so high·10^(38-zeros) < 10^38.
        let mantissa = match (high, low) {
            (0, low) => low / pow10(zeros),
            (high, 0) => high / pow10(zeros - 38),
            (high, low) => high * pow10(38 - zeros) + low / pow10(zeros),
        };
        Ok(Number::canonical(
            negative,
            mantissa,
            (exponent + zeros as i32) as i16,
        ))
    }

    /// Parses DynamoDB's number syntax (see the module documentation); exact or an error.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let not_a_number = || NumberError::NotANumber {
            text: text.chars().take(QUOTED_TEXT_CHARS).collect(),
        };
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        // One pass over the digits around the point: how many, how many after the point, and
        // where the first and last nonzero ones are (indices among the digits).
        let mut count: usize = 0;
        let mut fraction: usize = 0;
        let mut first_nonzero: Option<usize> = None;
        let mut last_nonzero: usize = 0;
        let mut seen_point = false;
        while let Some(&byte) = bytes.get(i) {
            match byte {
                b'0'..=b'9' => {
                    if byte != b'0' {
                        first_nonzero.get_or_insert(count);
                        last_nonzero = count;
                    }
                    count += 1;
                    fraction += usize::from(seen_point);
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if count == 0 {
            return Err(not_a_number());
        }
        let mut exponent: i128 = 0;
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            let exponent_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while let Some(&byte) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                exponent = (exponent * 10 + i128::from(byte - b'0')).min(EXPONENT_CAP);
                i += 1;
            }
            if i == start {
                return Err(not_a_number());
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(not_a_number());
        }
        let Some(first_nonzero) = first_nonzero else {
            return Ok(Number::zero());
        };
        let digits = last_nonzero - first_nonzero + 1;
        // The place value of the last nonzero digit: the canonical exponent. (Counts are below
        // isize::MAX, so the i128 arithmetic is exact.)
        let trailing = exponent - fraction as i128 + (count - 1 - last_nonzero) as i128;
        check_range(trailing + digits as i128 - 1, digits as i128)?;
        // Second pass: the significant digits (at most 38, so no overflow).
        let mantissa = bytes
            .iter()
            .filter(|b| b.is_ascii_digit())
            .skip(first_nonzero)
            .take(digits)
            .fold(0u128, |mantissa, &byte| {
                mantissa * 10 + u128::from(byte - b'0')
            });
        Ok(Number::canonical(negative, mantissa, trailing as i16))
    }

    /// The Number equal to `value` (every i64 has at most 19 digits, so always in range).
    pub fn from_i64(value: i64) -> Number {
        let magnitude = u128::from(value.unsigned_abs());
        if magnitude == 0 {
            return Number::zero();
        }
        let zeros = trailing_zeros(magnitude);
        Number::canonical(value < 0, magnitude / pow10(zeros), zeros as i16)
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Whether this is below zero (never for zero: `-0` is 0).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `-self` (zero stays zero).
    pub fn negate(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            ..*self
        }
    }

    /// Significant digits (0 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.mantissa)
    }

    /// DynamoDB's item-size accounting for a number: one byte per two significant digits,
    /// rounded up, plus one (so 1 byte for zero, 20 for 38 digits).
    pub fn size_bytes(&self) -> usize {
        (self.significant_digits() as usize).div_ceil(2) + 1
    }

    /// The power of ten of the leading digit (meaningless for zero).
    fn adjusted_exponent(&self) -> i32 {
        i32::from(self.exponent) + self.significant_digits() as i32 - 1
    }

    /// `self + other`, exact or an error: [`NumberError::TooPrecise`] when the exact sum needs
    /// more than 38 significant digits, [`NumberError::Overflow`]/[`NumberError::Underflow`]
    /// when it is out of range (checked first).
    pub fn checked_add(&self, other: &Number) -> Result<Number, NumberError> {
        if other.is_zero() {
            return Ok(*self);
        }
        if self.is_zero() {
            return Ok(*other);
        }
        // `big` ends at the higher place; `small`'s last digit is `shift` places lower.
        let (big, small) = if self.exponent >= other.exponent {
            (self, other)
        } else {
            (other, self)
        };
        let shift = (i32::from(big.exponent) - i32::from(small.exponent)).unsigned_abs();
        if shift > MAX_DIGITS {
            // small < 10^38 ≤ 10^(shift-1) lies wholly below big's last digit: the sum starts at
            // big's leading digit (one place lower when subtracting from a mantissa of 1, which
            // borrows through) and ends at small's last digit, which is nonzero.
            let borrows = big.negative != small.negative && big.mantissa == 1;
            let adjusted = big.adjusted_exponent() - i32::from(borrows);
            let digits = adjusted - i32::from(small.exponent) + 1;
            // big's leading digit is at least 39 places above -167, so no underflow either.
            invariant!(digits > MAX_DIGITS as i32 && adjusted >= MIN_ADJUSTED_EXPONENT);
            return Err(NumberError::TooPrecise {
                digits: digits.unsigned_abs() as usize,
            });
        }
        // big·10^shift = high·10^38 + low, both limbs < 10^38.
        let split = pow10(MAX_DIGITS - shift);
        let mut high = big.mantissa / split;
        let mut low = (big.mantissa % split) * pow10(shift);
        let negative;
        if big.negative == small.negative {
            negative = big.negative;
            low += small.mantissa;
            if low >= TEN_POW_38 {
                low -= TEN_POW_38;
                high += 1;
            }
        } else if high > 0 || low >= small.mantissa {
            negative = big.negative;
            if low >= small.mantissa {
                low -= small.mantissa;
            } else {
                low = low + TEN_POW_38 - small.mantissa;
                high -= 1;
            }
        } else {
            negative = small.negative;
            low = small.mantissa - low;
        }
        Number::from_wide(negative, high, low, i32::from(small.exponent))
    }

    /// `self - other`, exact or an error, as [`Number::checked_add`].
    pub fn checked_sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.checked_add(&other.negate())
    }

    /// Appends the order-preserving, prefix-free key encoding (module documentation).
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(CLASS_ZERO);
            return;
        }
        let flip = if self.negative { 0xFF } else { 0x00 };
        out.push(if self.negative {
            CLASS_NEGATIVE
        } else {
            CLASS_POSITIVE
        });
        // -130..=125 biased by 130 is exactly 0..=255.
        out.push((self.adjusted_exponent() - MIN_ADJUSTED_EXPONENT) as u8 ^ flip);
        let digits = self.significant_digits();
        let mut rest = if digits % 2 == 1 {
            self.mantissa * 10
        } else {
            self.mantissa
        };
        let pairs = digits.div_ceil(2) as usize;
        let mut buffer = [0u8; MAX_PAIRS];
        for slot in buffer.iter_mut().take(pairs).rev() {
            *slot = (rest % 100) as u8 + 1;
            rest /= 100;
        }
        out.extend(buffer.iter().take(pairs).map(|byte| byte ^ flip));
        out.push(TERMINATOR ^ flip);
    }

    /// Reads one key encoding from the start of `bytes`: the Number and how many bytes it took.
    /// Anything but a canonical encoding is an error.
    pub fn decode_ordered(bytes: &[u8]) -> Result<(Number, usize), DecodeError> {
        let (&class, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
        let negative = match class {
            CLASS_ZERO => return Ok((Number::zero(), 1)),
            CLASS_NEGATIVE => true,
            CLASS_POSITIVE => false,
            other => return Err(DecodeError::UnknownClass(other)),
        };
        let flip = if negative { 0xFF } else { 0x00 };
        let (&biased, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let adjusted = i32::from(biased ^ flip) + MIN_ADJUSTED_EXPONENT;
        let mut mantissa: u128 = 0;
        let mut pairs = 0usize;
        let mut last_pair = 0u8;
        let mut taken = None;
        for (i, &raw) in rest.iter().enumerate() {
            let byte = raw ^ flip;
            if byte == TERMINATOR {
                taken = Some(i + 3);
                break;
            }
            if byte > 100 {
                return Err(DecodeError::InvalidDigit(byte));
            }
            let pair = byte - 1;
            if pairs == MAX_PAIRS || (pairs == 0 && pair < 10) {
                return Err(DecodeError::NotCanonical);
            }
            mantissa = mantissa * 100 + u128::from(pair);
            pairs += 1;
            last_pair = pair;
        }
        let taken = taken.ok_or(DecodeError::Truncated)?;
        if pairs == 0 || last_pair == 0 {
            return Err(DecodeError::NotCanonical);
        }
        let mut digits = 2 * pairs as i32;
        if last_pair.is_multiple_of(10) {
            // An odd digit count's padding.
            mantissa /= 10;
            digits -= 1;
        }
        let exponent = (adjusted - digits + 1) as i16;
        let number =
            Number::from_parts(negative, mantissa, exponent).ok_or(DecodeError::NotCanonical)?;
        Ok((number, taken))
    }

    /// The magnitude order of two numbers of the same sign class.
    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        if self.is_zero() || other.is_zero() {
            return self.mantissa.cmp(&other.mantissa);
        }
        self.adjusted_exponent()
            .cmp(&other.adjusted_exponent())
            .then_with(|| {
                // Same leading place: align the shorter mantissa (≤ 38 digits either way).
                let (a, b) = (self.significant_digits(), other.significant_digits());
                if a < b {
                    (self.mantissa * pow10(b - a)).cmp(&other.mantissa)
                } else {
                    self.mantissa.cmp(&(other.mantissa * pow10(a - b)))
                }
            })
    }

    /// -1, 0 or 1.
    fn signum(&self) -> i8 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        self.signum().cmp(&other.signum()).then_with(|| {
            let magnitude = self.cmp_magnitude(other);
            if self.negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        })
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Number {
        Number::from_i64(value)
    }
}

impl FromStr for Number {
    type Err = NumberError;

    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}

/// Writes `count` zeros.
fn write_zeros(f: &mut fmt::Formatter<'_>, mut count: usize) -> fmt::Result {
    const ZEROS: &str = "00000000000000000000000000000000";
    while count > 0 {
        let chunk = count.min(ZEROS.len());
        f.write_str(&ZEROS[..chunk])?;
        count -= chunk;
    }
    Ok(())
}

impl fmt::Display for Number {
    /// Plain notation, no exponent: `100`, `0.5`, `-12.034`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let mut buffer = [0u8; MAX_DIGITS as usize];
        let mut start = buffer.len();
        let mut rest = self.mantissa;
        while rest > 0 && start > 0 {
            start -= 1;
            buffer[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let digits = std::str::from_utf8(&buffer[start..]).map_err(|_| fmt::Error)?;
        if self.exponent >= 0 {
            f.write_str(digits)?;
            return write_zeros(f, self.exponent.unsigned_abs().into());
        }
        // Digits before the point (≤ 0: the number is below 1).
        let point = digits.len() as i32 + i32::from(self.exponent);
        match usize::try_from(point) {
            Ok(whole) if whole > 0 => {
                let (int, frac) = digits.split_at(whole);
                write!(f, "{int}.{frac}")
            }
            _ => {
                f.write_str("0.")?;
                write_zeros(f, point.unsigned_abs() as usize)?;
                f.write_str(digits)
            }
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl Serialize for Number {
    /// A `(negative, mantissa, exponent)` tuple for binary formats (postcard: 3 to 22 bytes), the
    /// plain-notation string for human-readable ones (as DynamoDB's JSON carries numbers).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            (self.negative, self.mantissa, self.exponent).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    /// The inverse of `serialize`; non-canonical or out-of-range parts are an error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        use serde::de::Error;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Number::parse(&text).map_err(D::Error::custom)
        } else {
            let (negative, mantissa, exponent) = <(bool, u128, i16)>::deserialize(deserializer)?;
            Number::from_parts(negative, mantissa, exponent).ok_or_else(|| {
                D::Error::custom(format_args!(
                    "({negative}, {mantissa}, {exponent}) is not a canonical number"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bigdecimal::BigDecimal;
    use bigdecimal::num_bigint::{BigInt, Sign};
    use proptest::prelude::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn encoded(number: &Number) -> Vec<u8> {
        let mut out = Vec::new();
        number.encode_ordered(&mut out);
        out
    }

    // ---- The oracle: bigdecimal, an independent exact decimal implementation.

    fn big(number: &Number) -> BigDecimal {
        let magnitude = BigInt::from(number.mantissa);
        let signed = if number.negative {
            -magnitude
        } else {
            magnitude
        };
        BigDecimal::new(signed, -i64::from(number.exponent))
    }

    /// What a Number must make of an exact value: itself, canonical, or the error DynamoDB
    /// gives (magnitude checked before digits).
    fn expected(exact: BigDecimal) -> Result<Number, NumberError> {
        let (int, scale) = exact.into_bigint_and_exponent();
        let negative = int.sign() == Sign::Minus;
        let mut digits = int.magnitude().to_string();
        if digits == "0" {
            return Ok(Number::zero());
        }
        let mut exponent = -scale;
        while digits.ends_with('0') {
            digits.pop();
            exponent += 1;
        }
        let adjusted = exponent + digits.len() as i64 - 1;
        if adjusted > 125 {
            Err(NumberError::Overflow)
        } else if adjusted < -130 {
            Err(NumberError::Underflow)
        } else if digits.len() > 38 {
            Err(NumberError::TooPrecise {
                digits: digits.len(),
            })
        } else {
            Ok(Number::from_parts(negative, digits.parse().unwrap(), exponent as i16).unwrap())
        }
    }

    // ---- Generators covering every region: 1..=38 digits, every exponent, the edges.

    /// A digit count and a mantissa of exactly that many digits, last digit nonzero: random
    /// digits mostly, sometimes all nines or 10…01 (carries and borrows).
    fn arb_mantissa() -> impl Strategy<Value = (u32, u128)> {
        let shape = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
        (1u32..=38, any::<u128>(), shape).prop_map(|(digits, raw, shape)| {
            let (low, high) = (pow10(digits - 1), pow10(digits));
            let mantissa = match shape {
                0 => low + raw % (high - low),
                1 => high - 1,
                _ => low + 1,
            };
            let mantissa = if mantissa % 10 == 0 {
                mantissa + 1
            } else {
                mantissa
            };
            (digits, mantissa)
        })
    }

    fn arb_adjusted() -> impl Strategy<Value = i32> {
        prop_oneof![
            4 => MIN_ADJUSTED_EXPONENT..=MAX_ADJUSTED_EXPONENT,
            1 => Just(MIN_ADJUSTED_EXPONENT),
            1 => Just(MAX_ADJUSTED_EXPONENT),
            2 => -5i32..=5,
        ]
    }

    fn build(negative: bool, (digits, mantissa): (u32, u128), adjusted: i32) -> Number {
        let exponent = adjusted - digits as i32 + 1;
        Number::from_parts(negative, mantissa, exponent as i16).unwrap()
    }

    fn arb_nonzero() -> impl Strategy<Value = Number> {
        (any::<bool>(), arb_mantissa(), arb_adjusted()).prop_map(|(neg, m, adj)| build(neg, m, adj))
    }

    fn arb_number() -> impl Strategy<Value = Number> {
        prop_oneof![1 => Just(Number::zero()), 12 => arb_nonzero()]
    }

    /// Pairs far apart (independent), near each other (sums representable, carries), almost
    /// cancelling (same digits but the last few, at the same or a nearby exponent), and
    /// complementing (summing to about a power of ten).
    fn arb_pair() -> impl Strategy<Value = (Number, Number)> {
        let nearby = (arb_nonzero(), any::<bool>(), arb_mantissa(), -40i32..=40).prop_map(
            |(a, negative, mantissa, delta)| {
                let adjusted = (a.adjusted_exponent() + delta)
                    .clamp(MIN_ADJUSTED_EXPONENT, MAX_ADJUSTED_EXPONENT);
                (a, build(negative, mantissa, adjusted))
            },
        );
        let cancelling = (arb_nonzero(), -1000i128..1000, any::<bool>(), 0i32..=2).prop_filter_map(
            "representable",
            |(a, delta, same_sign, shift)| {
                let mantissa = u128::try_from(a.mantissa as i128 + delta).ok()?;
                let mantissa = mantissa.checked_mul(pow10(shift as u32))?;
                if mantissa >= TEN_POW_38 {
                    return None;
                }
                let negative = a.negative == same_sign;
                let exponent = i32::from(a.exponent) - shift;
                let b = Number::from_wide(negative, 0, mantissa, exponent).ok()?;
                Some((a, b))
            },
        );
        // b ≈ 10^k - a at a's exponent: a + b carries to exactly a power of ten (10^38
        // included), whose zeros are then trimmed.
        let complementing = (
            arb_nonzero(),
            any::<prop::sample::Index>(),
            -3i128..=3,
            any::<bool>(),
        )
            .prop_filter_map("representable", |(a, k, delta, same_sign)| {
                let digits = a.significant_digits();
                let k = digits + k.index((MAX_DIGITS - digits + 1) as usize) as u32;
                let mantissa =
                    u128::try_from(pow10(k) as i128 - a.mantissa as i128 + delta).ok()?;
                if mantissa >= TEN_POW_38 {
                    return None;
                }
                let negative = a.negative != same_sign;
                let b = Number::from_wide(negative, 0, mantissa, i32::from(a.exponent)).ok()?;
                Some((a, b))
            });
        prop_oneof![
            2 => (arb_number(), arb_number()),
            3 => nearby,
            2 => cancelling,
            2 => complementing,
        ]
    }

    // ---- Parsing.

    #[test]
    fn parse_accepts_dynamodb_forms() {
        let cases = [
            ("1.50", "1.5"),
            ("1.5", "1.5"),
            ("15E-1", "1.5"),
            ("0.15e+1", "1.5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+7", "7"),
            ("-7", "-7"),
            ("-0", "0"),
            ("+0", "0"),
            ("-0.000", "0"),
            ("0e999999999", "0"),
            ("-0E-99999999999999999999999999999999999", "0"),
            ("00012.3400e2", "1234"),
            ("1E+2", "100"),
            ("1e2", "100"),
            ("1e-2", "0.01"),
            ("-12.034", "-12.034"),
            ("100", "100"),
            ("000", "0"),
            (
                "0.000000000000000000000000000000000000000012300",
                "0.0000000000000000000000000000000000000000123",
            ),
            (
                "1e00000000000000000000000000000000000000000000000000000000000000000000000000000002",
                "100",
            ),
        ];
        for (text, plain) in cases {
            assert_eq!(n(text).to_string(), plain, "{text}");
        }
        assert_eq!(n("1.50"), n("15E-1"));
        assert_eq!(encoded(&n("1.50")), encoded(&n("15E-1")));
        assert_eq!(
            n("0.000000000000000000000000000000000000000012300").significant_digits(),
            3
        );
        assert!(!n("-0").is_negative());
        assert_eq!(n("-0"), Number::zero());
        assert_eq!("2.5".parse::<Number>(), Ok(n("25e-1")));
    }

    #[test]
    fn parse_rejects_garbage() {
        let garbage = [
            "",
            " ",
            " 1",
            "1 ",
            "\t1",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            "0x10",
            "1e",
            "1E",
            "1e+",
            "1e-",
            "--1",
            "+-1",
            "-+1",
            "++1",
            "1.2.3",
            ".",
            "-",
            "+",
            "-.",
            "e5",
            ".e5",
            "1,5",
            "1_000",
            "1e1.5",
            "1e5e5",
            "١",
            "1\u{0}",
            "½",
            "1ee5",
            "1e--5",
        ];
        for text in garbage {
            assert_eq!(
                Number::parse(text),
                Err(NumberError::NotANumber { text: text.into() }),
                "{text:?}"
            );
        }
        // The quoted text is cut to 40 characters.
        let long = format!("x{}", "é".repeat(100));
        let Err(NumberError::NotANumber { text }) = Number::parse(&long) else {
            panic!("accepted {long}");
        };
        assert_eq!(text.chars().count(), 40);
        assert!(long.starts_with(&text));
    }

    #[test]
    fn parse_limits_at_both_edges() {
        let nines_38 = "9".repeat(38);
        let smallest = n("1E-130");
        assert_eq!(smallest.to_string(), format!("0.{}1", "0".repeat(129)));
        assert_eq!(n("0.1E-129"), smallest);
        assert_eq!(n(&format!("-0.{}1", "0".repeat(129))), smallest.negate());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert_eq!(Number::parse("-1e-131"), Err(NumberError::Underflow));
        assert_eq!(Number::parse("0.99E-130"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse("1e-99999999999999999999"),
            Err(NumberError::Underflow)
        );

        let largest = n(&format!("9.{}E+125", &nines_38[1..]));
        assert_eq!(largest.to_string(), format!("{nines_38}{}", "0".repeat(88)));
        assert_eq!(n(&format!("-{largest}")), largest.negate());
        assert_eq!(n("1E+125").to_string(), format!("1{}", "0".repeat(125)));
        assert_eq!(Number::parse("1E+126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("-1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("10E+125"), Err(NumberError::Overflow));
        assert_eq!(
            Number::parse("1e99999999999999999999"),
            Err(NumberError::Overflow)
        );
        // Out of range and too precise: the range error wins.
        assert_eq!(
            Number::parse(&format!("1.{}1E126", "0".repeat(40))),
            Err(NumberError::Overflow)
        );
        // The smallest number with 38 digits ends 37 places below 1E-130.
        let precise_small = n(&format!("1.{}1E-130", "0".repeat(36)));
        assert_eq!(precise_small.significant_digits(), 38);

        // 38 significant digits are fine, 39 are not; zeros around them do not count.
        assert_eq!(n(&nines_38).significant_digits(), 38);
        assert_eq!(n(&format!("000{nines_38}000")).significant_digits(), 38);
        assert_eq!(n(&format!("0.000{nines_38}000")).significant_digits(), 38);
        assert_eq!(
            Number::parse(&format!("{nines_38}9")),
            Err(NumberError::TooPrecise { digits: 39 })
        );
        assert_eq!(
            Number::parse("-1.23456789012345678901234567890123456789"),
            Err(NumberError::TooPrecise { digits: 39 })
        );
        assert_eq!(
            Number::parse(&format!("0.1{}1", "0".repeat(998))),
            Err(NumberError::TooPrecise { digits: 1000 })
        );
    }

    #[test]
    fn errors_name_their_limit() {
        let messages = [
            Number::parse("x").unwrap_err().to_string(),
            NumberError::TooPrecise { digits: 39 }.to_string(),
            NumberError::Overflow.to_string(),
            NumberError::Underflow.to_string(),
        ];
        assert!(messages[0].contains("\"x\""), "{}", messages[0]);
        assert!(
            messages[1].contains("39") && messages[1].contains("38"),
            "{}",
            messages[1]
        );
        assert!(messages[2].contains("E+125"), "{}", messages[2]);
        assert!(messages[3].contains("1E-130"), "{}", messages[3]);
    }

    #[test]
    fn display_is_plain_notation() {
        let cases = [
            ("100", "100"),
            ("0.5", "0.5"),
            ("-12.034", "-12.034"),
            ("1E+3", "1000"),
            ("-1.2E-3", "-0.0012"),
            ("123.456E1", "1234.56"),
            ("123.456E3", "123456"),
            ("0", "0"),
        ];
        for (text, plain) in cases {
            assert_eq!(n(text).to_string(), plain, "{text}");
        }
        assert_eq!(format!("{:?}", n("-1.5")), "Number(-1.5)");
    }

    #[test]
    fn from_i64_is_exact() {
        for value in [
            0,
            1,
            -1,
            10,
            -1000,
            123_450,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let number = Number::from_i64(value);
            assert_eq!(number, n(&value.to_string()), "{value}");
            assert_eq!(number.to_string(), value.to_string());
            assert_eq!(Number::from(value), number);
        }
        assert_eq!(Number::zero(), Number::default());
        assert!(Number::zero().is_zero() && !n("1e-130").is_zero());
        assert!(n("-3").is_negative() && !n("3").is_negative());
        assert_eq!(Number::zero().negate(), Number::zero());
        assert!(!Number::zero().negate().is_negative());
    }

    #[test]
    fn size_counts_two_digits_a_byte_plus_one() {
        let cases = [
            ("0", 1),
            ("1", 2),
            ("12", 2),
            ("123", 3),
            ("-123", 3),
            ("1E+125", 2),
            ("0.000120", 2),
            ("12345678901234567890123456789012345678", 20),
            ("1234567890123456789012345678901234567", 20),
        ];
        for (text, size) in cases {
            assert_eq!(n(text).size_bytes(), size, "{text}");
        }
    }

    // ---- Arithmetic: fixed cases computed with Python's decimal module.

    /// `(a, op, b, result)`: `result` is the plain-notation sum or difference, or the error.
    /// Computed with (prec=200 plus the Inexact trap, so a sum needing more than 200 digits is
    /// caught rather than rounded; such sums are "TooPrecise" without a digit count):
    /// ```python
    /// import decimal
    /// ctx = decimal.Context(prec=200, Emax=999999, Emin=-999999, traps=[decimal.Inexact])
    /// def classify(x):
    ///     x = x.normalize(ctx)
    ///     if x.is_zero(): return "0"
    ///     if x.adjusted() > 125: return "Overflow"
    ///     if x.adjusted() < -130: return "Underflow"
    ///     if len(x.as_tuple().digits) > 38: return "TooPrecise(%d)" % len(x.as_tuple().digits)
    ///     return "{:f}".format(x)
    /// for a, op, b in cases:
    ///     try:
    ///         x = (ctx.add if op == "+" else ctx.subtract)(decimal.Decimal(a), decimal.Decimal(b))
    ///     except decimal.Inexact:
    ///         print(a, op, b, "TooPrecise"); continue
    ///     print(a, op, b, classify(x))
    /// ```
    const PYTHON_CASES: &[(&str, char, &str, &str)] = &[
        (
            "1E+125",
            '-',
            "9.9999999999999999999999999999999999999E+124",
            "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
        (
            "99999999999999999999999999999999999999",
            '+',
            "1",
            "100000000000000000000000000000000000000",
        ),
        (
            "99999999999999999999999999999999999999",
            '+',
            "0.1",
            "TooPrecise(39)",
        ),
        (
            "9.9999999999999999999999999999999999999E+125",
            '+',
            "1E+125",
            "Overflow",
        ),
        (
            "-9.9999999999999999999999999999999999999E+125",
            '-',
            "1E+125",
            "Overflow",
        ),
        ("1.1E-130", '-', "1E-130", "Underflow"),
        ("1E-130", '-', "1E-130", "0"),
        ("0.1", '+', "0.2", "0.3"),
        ("1", '-', "0.0000001", "0.9999999"),
        (
            "12345678901234567890123456789012345678",
            '-',
            "12345678901234567890123456789012345677",
            "1",
        ),
        ("1E+125", '+', "1E-130", "TooPrecise"),
        ("1E+100", '+', "1E+62", "TooPrecise(39)"),
        (
            "1E+100",
            '+',
            "1E+63",
            "10000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("-5", '+', "5", "0"),
        ("-1.5", '-', "2.25", "-3.75"),
        (
            "50000000000000000000000000000000000000",
            '+',
            "50000000000000000000000000000000000000",
            "100000000000000000000000000000000000000",
        ),
        ("1E+38", '-', "1", "99999999999999999999999999999999999999"),
        ("1E+39", '-', "1", "TooPrecise(39)"),
        (
            "9.9999999999999999999999999999999999999E+125",
            '-',
            "-1E+88",
            "Overflow",
        ),
        (
            "9.9999999999999999999999999999999999999E+125",
            '+',
            "1E+87",
            "TooPrecise(39)",
        ),
        (
            "1.0000000000000000000000000000000000001E-93",
            '-',
            "1E-93",
            "0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
        ),
        (
            "1.0000000000000000000000000000000000001E-92",
            '-',
            "1E-92",
            "0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
        ),
        ("123.456", '-', "123.457", "-0.001"),
        (
            "0",
            '-',
            "1E-130",
            "-0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
        ),
    ];

    #[test]
    fn arithmetic_matches_python_decimal() {
        for &(a, op, b, result) in PYTHON_CASES {
            let (a, b) = (n(a), n(b));
            let got = if op == '+' {
                a.checked_add(&b)
            } else {
                a.checked_sub(&b)
            };
            match result {
                "Overflow" => assert_eq!(got, Err(NumberError::Overflow), "{a} {op} {b}"),
                "Underflow" => assert_eq!(got, Err(NumberError::Underflow), "{a} {op} {b}"),
                "TooPrecise" => assert!(
                    matches!(got, Err(NumberError::TooPrecise { digits }) if digits > 200),
                    "{a} {op} {b}: {got:?}"
                ),
                _ => match result.strip_prefix("TooPrecise(") {
                    Some(digits) => {
                        let digits = digits.trim_end_matches(')').parse().unwrap();
                        assert_eq!(got, Err(NumberError::TooPrecise { digits }), "{a} {op} {b}");
                    }
                    None => {
                        assert_eq!(
                            got.map(|x| x.to_string()),
                            Ok(result.to_string()),
                            "{a} {op} {b}"
                        );
                    }
                },
            }
        }
    }

    // ---- Key encoding.

    #[test]
    fn encoding_examples() {
        assert_eq!(encoded(&Number::zero()), [0x02]);
        assert_eq!(encoded(&n("1")), [0x03, 0x82, 0x0B, 0x00]);
        assert_eq!(encoded(&n("-1")), [0x01, 0x7D, 0xF4, 0xFF]);
        assert_eq!(encoded(&n("1.5")), [0x03, 0x82, 0x10, 0x00]);
        assert_eq!(encoded(&n("1E-130")), [0x03, 0x00, 0x0B, 0x00]);
        assert_eq!(encoded(&n("1E+125")), [0x03, 0xFF, 0x0B, 0x00]);
        let longest = n(&"9".repeat(38)).negate();
        assert_eq!(encoded(&longest).len(), MAX_ENCODED_LEN);
        // A number followed by more key bytes decodes alone.
        let mut key = encoded(&n("-12.5"));
        let len = key.len();
        key.extend_from_slice(b"rest");
        assert_eq!(Number::decode_ordered(&key), Ok((n("-12.5"), len)));
    }

    #[test]
    fn decoding_rejects_malformed_bytes() {
        let twenty_pairs: Vec<u8> = [0x03, 0x82]
            .into_iter()
            .chain([0x0B; 20])
            .chain([0x00])
            .collect();
        let cases: &[(&[u8], DecodeError)] = &[
            (&[], DecodeError::Truncated),
            (&[0x03], DecodeError::Truncated),
            (&[0x03, 0x82], DecodeError::Truncated),
            (&[0x03, 0x82, 0x0B], DecodeError::Truncated),
            (&[0x01, 0x7D, 0xF4], DecodeError::Truncated),
            (&[0x00], DecodeError::UnknownClass(0x00)),
            (&[0x04, 0x82, 0x0B, 0x00], DecodeError::UnknownClass(0x04)),
            (&[0x03, 0x82, 0x00], DecodeError::NotCanonical),
            (&[0x03, 0x82, 0x01, 0x0B, 0x00], DecodeError::NotCanonical),
            (&[0x03, 0x82, 0x0A, 0x00], DecodeError::NotCanonical),
            (&[0x03, 0x82, 0x0B, 0x01, 0x00], DecodeError::NotCanonical),
            (&[0x03, 0x82, 0x66, 0x00], DecodeError::InvalidDigit(0x66)),
            (&[0x01, 0x7D, 0x00, 0xFF], DecodeError::InvalidDigit(0xFF)),
            (&twenty_pairs, DecodeError::NotCanonical),
        ];
        for (bytes, error) in cases {
            assert_eq!(Number::decode_ordered(bytes), Err(*error), "{bytes:02x?}");
        }
    }

    // ---- serde.

    #[test]
    fn serde_validates_parts() {
        let number = n("-12.034");
        let bytes = postcard::to_stdvec(&number).unwrap();
        assert_eq!(bytes.len(), 4);
        assert_eq!(postcard::from_bytes::<Number>(&bytes), Ok(number));
        let bad: [(bool, u128, i16); 7] = [
            (true, 0, 0),
            (false, 0, 1),
            (false, 10, 0),
            (false, TEN_POW_38 + 1, -200),
            (false, 1, 126),
            (false, 1, -131),
            (false, 11, -132),
        ];
        for parts in bad {
            let bytes = postcard::to_stdvec(&parts).unwrap();
            assert!(postcard::from_bytes::<Number>(&bytes).is_err(), "{parts:?}");
        }
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"-12.034\"");
        assert_eq!(
            serde_json::from_str::<Number>("\"-12034e-3\"").unwrap(),
            number
        );
        assert!(serde_json::from_str::<Number>("\"1e126\"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        // Byte order of encodings is numeric order, and both agree with the oracle.
        #[test]
        fn encoding_order_is_numeric_order((a, b) in arb_pair()) {
            let order = a.cmp(&b);
            prop_assert_eq!(order, big(&a).cmp(&big(&b)));
            prop_assert_eq!(encoded(&a).cmp(&encoded(&b)), order);
            prop_assert_eq!(a.partial_cmp(&b), Some(order));
            prop_assert_eq!(order == Ordering::Equal, a == b);
            prop_assert_eq!(a.negate().cmp(&b.negate()), order.reverse());
        }

        // Encodings decode to their number, are canonical and prefix-free.
        #[test]
        fn encoding_round_trips_and_is_prefix_free((a, b) in arb_pair(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
            let (ea, eb) = (encoded(&a), encoded(&b));
            prop_assert!(ea.len() <= MAX_ENCODED_LEN);
            let mut key = ea.clone();
            key.extend_from_slice(&tail);
            prop_assert_eq!(Number::decode_ordered(&key), Ok((a, ea.len())));
            if a != b {
                prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea), "{:02x?} {:02x?}", ea, eb);
            } else {
                prop_assert_eq!(ea, eb);
            }
        }

        // Any bytes: an error or a canonical number whose encoding is what was consumed.
        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
            if let Ok((number, used)) = Number::decode_ordered(&bytes) {
                prop_assert_eq!(&encoded(&number)[..], &bytes[..used]);
            }
        }

        // A valid encoding with one byte changed: an error or a canonical number again.
        #[test]
        fn decoding_altered_encodings_never_panics(a in arb_number(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = encoded(&a);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok((number, used)) = Number::decode_ordered(&bytes) {
                prop_assert_eq!(&encoded(&number)[..], &bytes[..used]);
            }
        }

        // checked_add and checked_sub agree with exact arithmetic, errors included.
        #[test]
        fn arithmetic_agrees_with_the_oracle((a, b) in arb_pair()) {
            prop_assert_eq!(a.checked_add(&b), expected(big(&a) + big(&b)), "{} + {}", a, b);
            prop_assert_eq!(a.checked_sub(&b), expected(big(&a) - big(&b)), "{} - {}", a, b);
            prop_assert_eq!(a.checked_add(&b), b.checked_add(&a));
        }

        // Display then parse is the identity, and Display agrees with the oracle's plain form.
        #[test]
        fn display_parse_round_trips(a in arb_number()) {
            let text = a.to_string();
            prop_assert_eq!(Number::parse(&text), Ok(a));
            prop_assert_eq!(text, big(&a).to_plain_string());
            prop_assert_eq!(a.size_bytes(), (a.significant_digits() as usize).div_ceil(2) + 1);
        }

        // The same number written with padding zeros, any point position and any exponent.
        #[test]
        fn every_notation_parses_to_the_number(
            a in arb_nonzero(),
            leading in 0usize..4,
            trailing in 0usize..4,
            point in any::<prop::sample::Index>(),
            upper in any::<bool>(),
            plus in any::<bool>(),
        ) {
            let body = format!("{}{}{}", "0".repeat(leading), a.mantissa, "0".repeat(trailing));
            let point = point.index(body.len() + 1);
            let exponent = i64::from(a.exponent) - trailing as i64 + (body.len() - point) as i64;
            let sign = if a.negative { "-" } else if plus { "+" } else { "" };
            let e = if upper { 'E' } else { 'e' };
            let exponent_sign = if plus && exponent >= 0 { "+" } else { "" };
            let text = format!("{sign}{}.{}{e}{exponent_sign}{exponent}", &body[..point], &body[point..]);
            prop_assert_eq!(Number::parse(&text), Ok(a), "{}", text);
        }

        // Arbitrary text never panics the parser; what it accepts round-trips.
        #[test]
        fn parsing_garbage_never_panics(text in "[-+0-9.eE]{0,12}|.{0,20}") {
            if let Ok(number) = Number::parse(&text) {
                prop_assert_eq!(Number::parse(&number.to_string()), Ok(number));
            }
        }

        // postcard round trip; arbitrary parts decode only when canonical.
        #[test]
        fn serde_round_trips(a in arb_number(), parts in (any::<bool>(), any::<u128>(), -200i16..200)) {
            let bytes = postcard::to_stdvec(&a).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Number>(&bytes), Ok(a));
            let bytes = postcard::to_stdvec(&parts).unwrap();
            let decoded = postcard::from_bytes::<Number>(&bytes).ok();
            prop_assert_eq!(decoded, Number::from_parts(parts.0, parts.1, parts.2));
        }
    }
}
