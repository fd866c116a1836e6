//! Gunzip of one blob: the gzip member's header and trailer read here, the deflate stream
//! inflated by `miniz_oxide` straight into a buffer of the size the trailer announces.
//!
//! Not flate2: its reader checks the trailer's CRC-32 with crc32fast, whose 16 KB of tables
//! (incompressible, so 16 KB of the gzipped module) are there for speed the edge does not need.
//! The CRC is still checked, with one 1 KB table: the loader has already checked the SHA-256
//! of these bytes, but the edge must load exactly what the publisher (flate2) loads, or the
//! two would disagree about which blob is corrupt. So a stream is refused when it is truncated
//! or padded, produces other than `ISIZE` bytes, or fails its CRC; and never more than the
//! limit is allocated or inflated.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress};

/// Why a gzip stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunzipError {
    /// Not a complete, well-formed single gzip member.
    Corrupt,
    /// The stream announces more than the limit.
    TooLarge,
}

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;
/// The longest header name or comment flate2 reads.
const MAX_HEADER_FIELD: usize = 65535;

/// The inflated bytes of `gz`, one gzip member (RFC 1952), at most `limit` of them.
pub fn gunzip(gz: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let deflate_start = header_len(gz).ok_or(GunzipError::Corrupt)?;
    let trailer_start = gz.len().checked_sub(8).ok_or(GunzipError::Corrupt)?;
    if trailer_start < deflate_start {
        return Err(GunzipError::Corrupt);
    }
    let trailer = &gz[trailer_start..];
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) as usize;
    // A trailer can lie (or be the tail of a truncated stream), so an announced size over the
    // limit is not believed either way: inflating one byte past the limit tells which it is.
    let mut out = vec![0; size.min(limit.saturating_add(1))];
    let deflate = &gz[deflate_start..trailer_start];
    let (status, read, written) = decompress(
        &mut DecompressorOxide::new(),
        deflate,
        &mut out,
        0,
        TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    if written > limit || (status == TINFLStatus::HasMoreOutput && size > limit) {
        return Err(GunzipError::TooLarge);
    }
    // `Done` with input left over is a stream followed by garbage; `HasMoreOutput` a stream
    // longer than its trailer says (ISIZE is the length mod 2^32, so this also stops a bomb
    // whose true length wraps around to something small).
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if status != TINFLStatus::Done || read != deflate.len() || written != size || crc32(&out) != crc
    {
        return Err(GunzipError::Corrupt);
    }
    Ok(out)
}

/// CRC-32 (ISO-HDLC, the one gzip's trailer carries), a byte at a time.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// Length of the member header, optional fields included, if it is one deflate can follow.
/// As strict as flate2's reader: reserved flag bits set, a name or comment over 65,535 bytes,
/// or a wrong header CRC (`FHCRC`) is refused.
fn header_len(gz: &[u8]) -> Option<usize> {
    let [0x1f, 0x8b, 8, flags, _, _, _, _, _, _, ..] = *gz else {
        return None;
    };
    if flags & FRESERVED != 0 {
        return None;
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = gz.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let len = gz.get(at..)?.iter().position(|&b| b == 0)?;
            if len > MAX_HEADER_FIELD {
                return None;
            }
            at += len + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = gz.get(at..at + 2)?;
        if u16::from_le_bytes([stored[0], stored[1]]) != crc32(gz.get(..at)?) as u16 {
            return None;
        }
        at += 2;
    }
    (at <= gz.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, GzBuilder};
    use std::io::Write as _;

    fn gzip_with(builder: GzBuilder, bytes: &[u8]) -> Vec<u8> {
        let mut encoder = builder.write(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn what_flate2_writes_comes_back_byte_for_byte() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for builder in [
            GzBuilder::new(),
            GzBuilder::new()
                .filename("flags.json")
                .comment("a comment")
                .extra(vec![1, 2, 3]),
        ] {
            assert_eq!(
                gunzip(&gzip_with(builder, &text), usize::MAX).unwrap(),
                text
            );
        }
        assert_eq!(gunzip(&gzip_with(GzBuilder::new(), b""), 0).unwrap(), b"");
    }

    /// What flate2 (the publisher's reader) refuses, the edge refuses too.
    #[test]
    fn header_checks_match_flate2() {
        use std::io::Read as _;
        let flate2_reads = |gz: &[u8]| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut out)
                .is_ok()
        };
        // A header with FHCRC, its CRC right, then wrong.
        let deflated = gzip_with(GzBuilder::new(), b"{}");
        let mut with_hcrc = deflated[..10].to_vec();
        with_hcrc[3] |= FHCRC;
        let hcrc = crc32(&with_hcrc) as u16;
        with_hcrc.extend_from_slice(&hcrc.to_le_bytes());
        with_hcrc.extend_from_slice(&deflated[10..]);
        assert!(flate2_reads(&with_hcrc));
        assert_eq!(gunzip(&with_hcrc, usize::MAX).unwrap(), b"{}");
        with_hcrc[10] ^= 1;
        assert!(!flate2_reads(&with_hcrc));
        assert_eq!(gunzip(&with_hcrc, usize::MAX), Err(GunzipError::Corrupt));
        // Names at and just under flate2's limit.
        for (len, readable) in [(MAX_HEADER_FIELD, true), (MAX_HEADER_FIELD + 1, false)] {
            let mut named = deflated[..10].to_vec();
            named[3] |= FNAME;
            named.extend(std::iter::repeat_n(b'n', len));
            named.push(0);
            named.extend_from_slice(&deflated[10..]);
            assert_eq!(flate2_reads(&named), readable, "{len}");
            assert_eq!(gunzip(&named, usize::MAX).is_ok(), readable, "{len}");
        }
    }

    #[test]
    fn the_crc_is_gzips() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let gz = gzip_with(GzBuilder::new(), b"{\"flags\":[]}");
        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert_eq!(gunzip(&bad_crc, usize::MAX), Err(GunzipError::Corrupt));
    }

    #[test]
    fn truncated_padded_or_lying_streams_are_refused() {
        let good = gzip_with(GzBuilder::new(), &[b'x'; 5000]);
        for cut in [0, 3, 10, good.len() / 2, good.len() - 9, good.len() - 1] {
            assert_eq!(
                gunzip(&good[..cut], usize::MAX),
                Err(GunzipError::Corrupt),
                "{cut}"
            );
        }
        let mut padded = good.clone();
        padded.extend_from_slice(&good);
        assert_eq!(gunzip(&padded, usize::MAX), Err(GunzipError::Corrupt));
        for isize_delta in [-1i64, 1] {
            let mut lying = good.clone();
            let at = lying.len() - 4;
            let size = 5000i64 + isize_delta;
            lying[at..].copy_from_slice(&(size as u32).to_le_bytes());
            assert_eq!(gunzip(&lying, usize::MAX), Err(GunzipError::Corrupt));
        }
        let mut not_deflate = good.clone();
        not_deflate[2] = 7;
        assert_eq!(gunzip(&not_deflate, usize::MAX), Err(GunzipError::Corrupt));
        let mut reserved = good.clone();
        reserved[3] |= 0x20;
        assert_eq!(gunzip(&reserved, usize::MAX), Err(GunzipError::Corrupt));
    }

    #[test]
    fn a_stream_over_the_limit_is_refused_whatever_its_trailer_says() {
        let bomb = gzip_with(GzBuilder::new(), &vec![0; 1 << 20]);
        assert_eq!(gunzip(&bomb, (1 << 20) - 1), Err(GunzipError::TooLarge));
        assert_eq!(gunzip(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        // The trailer claims 100 bytes: the stream is still not inflated past the limit.
        let mut lying = bomb.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(gunzip(&lying, 1000), Err(GunzipError::Corrupt));
        // A truncated small stream whose last bytes read as a huge size is corrupt, not large.
        let small = gzip_with(GzBuilder::new(), b"{\"flags\":{}}");
        let mut cut = small[..small.len() - 8].to_vec();
        cut.extend_from_slice(&u32::MAX.to_le_bytes());
        cut.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gunzip(&cut, 1000), Err(GunzipError::Corrupt));
    }
}
