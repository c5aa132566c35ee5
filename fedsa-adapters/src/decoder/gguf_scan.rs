//! A minimal walk over a GGUF header listing each tensor's name and ggml type id. candle's
//! reader stops at the first type it does not know without naming the tensor; this walk runs
//! only then, to say which tensor it was.

use std::io::{BufReader, Read};
use std::path::Path;

/// The names llama.cpp gives the ggml types candle cannot read.
pub(crate) fn ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

/// Whether candle 0.11 reads (and dequantizes) ggml type `id`.
pub(crate) fn candle_reads(id: u32) -> bool {
    matches!(id, 0..=3 | 6..=15 | 30)
}

struct Header<R> {
    r: R,
}

impl<R: Read> Header<R> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).ok()?;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let copied = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink()).ok()?;
        (copied == n).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u64()?;
        let mut buf = Vec::new();
        (&mut self.r).take(n).read_to_end(&mut buf).ok()?;
        (buf.len() as u64 == n).then(|| String::from_utf8_lossy(&buf).into_owned())
    }

    /// Skips one metadata value of type `t`.
    fn skip_value(&mut self, t: u32) -> Option<()> {
        match t {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let n = self.u64()?;
                self.skip(n)
            }
            9 => {
                let (item, n) = (self.u32()?, self.u64()?);
                for _ in 0..n {
                    self.skip_value(item)?;
                }
                Some(())
            }
            _ => None,
        }
    }
}

/// `(name, ggml type id)` of every tensor of a GGUF v2/v3 file; `None` if the header cannot be
/// walked.
pub(crate) fn tensor_types(path: &Path) -> Option<Vec<(String, u32)>> {
    let file = std::fs::File::open(path).ok()?;
    let mut h = Header {
        r: BufReader::new(file),
    };
    let (magic, version) = (h.u32()?, h.u32()?);
    if magic != 0x4655_4747 || !(2..=3).contains(&version) {
        return None;
    }
    let (tensors, kvs) = (h.u64()?, h.u64()?);
    for _ in 0..kvs {
        h.string()?;
        let t = h.u32()?;
        h.skip_value(t)?;
    }
    let mut out = Vec::new();
    for _ in 0..tensors {
        let name = h.string()?;
        let dims = h.u32()?;
        h.skip(8 * u64::from(dims))?;
        let dtype = h.u32()?;
        h.skip(8)?;
        out.push((name, dtype));
    }
    Some(out)
}
