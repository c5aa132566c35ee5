//! A small, dependency-free byte format for a plugin's checkpoint state: named `f32` vectors.
//! Layout (little-endian): magic `FSA1`, entry count (u32), then per entry the name length
//! (u32), the UTF-8 name, the value count (u64) and the values (f32 each).

const MAGIC: &[u8; 4] = b"FSA1";

/// Encodes named vectors in the order given.
pub fn encode_state<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [f32])>) -> Vec<u8> {
    let entries: Vec<_> = entries.into_iter().collect();
    let mut out = Vec::with_capacity(
        8 + entries
            .iter()
            .map(|(n, v)| 12 + n.len() + 4 * v.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (name, values) in entries {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Decodes what [`encode_state`] wrote; any truncation or corruption is an error, not a panic.
pub fn decode_state(bytes: &[u8]) -> Result<Vec<(String, Vec<f32>)>, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("state does not start with `FSA1`: not written by encode_state".into());
    }
    let count = r.u32()? as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        let name_len = r.u32()? as usize;
        let name = std::str::from_utf8(r.take(name_len)?)
            .map_err(|e| format!("state entry name is not UTF-8: {e}"))?
            .to_string();
        let n = usize::try_from(r.u64()?).map_err(|_| "state entry too large".to_string())?;
        let raw = r.take(n.checked_mul(4).ok_or("state entry too large")?)?;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        entries.push((name, values));
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the state",
            bytes.len() - r.at
        ));
    }
    Ok(entries)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "state truncated: needed {n} bytes at offset {}, {} left",
                self.at,
                self.bytes.len() - self.at
            ));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let m = [1.0f32, -2.5, f32::MIN_POSITIVE];
        let bytes = encode_state([("m/w", &m[..]), ("v/w", &[][..])]);
        let back = decode_state(&bytes).unwrap();
        assert_eq!(
            back,
            vec![("m/w".to_string(), m.to_vec()), ("v/w".into(), vec![])]
        );
        let e = decode_state(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(decode_state(b"nope").unwrap_err().contains("FSA1"));
    }
}
