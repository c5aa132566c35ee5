//! Writing run output so that a crash never leaves a corrupt file: write a temporary file in the
//! same folder, fsync it, rename it over the target, fsync the folder.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{Error, ParamSet, Result};

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file path")))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable only once the folder entry is on disk.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// A parameter set as safetensors bytes (f32, names in order).
pub fn params_to_safetensors(params: &ParamSet) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = params
        .iter()
        .map(|(n, t)| {
            let raw: Vec<u8> = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), raw, t.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, raw, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::param(n.clone(), e.to_string()))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::backend("writing safetensors", e))
}

/// Parses safetensors bytes holding f32 tensors; `path` names the source in errors.
pub fn params_from_safetensors(bytes: &[u8], path: &Path) -> Result<ParamSet> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = ParamSet::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(Error::model(
                path,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, view.shape().to_vec(), data)?;
    }
    Ok(out)
}

/// Saves a parameter set as a safetensors file, atomically.
pub fn save_params(path: &Path, params: &ParamSet) -> Result<()> {
    write_atomic(path, &params_to_safetensors(params)?)
}

/// Loads a safetensors file of f32 tensors.
pub fn load_params(path: &Path) -> Result<ParamSet> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    params_from_safetensors(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_and_truncation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let mut p = ParamSet::new();
        p.insert(
            "a.lora_A.weight",
            vec![2, 3],
            (0..6).map(|v| v as f32).collect(),
        )
        .unwrap();
        p.insert("b", vec![1], vec![-1.5]).unwrap();
        save_params(&path, &p).unwrap();
        assert_eq!(load_params(&path).unwrap(), p);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = load_params(&path).unwrap_err().to_string();
        assert!(err.contains("p.safetensors"), "{err}");
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
