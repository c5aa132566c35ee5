//! `ParamSet`: named f32 tensors in a deterministic order. It is the only thing that crosses
//! between client and server (and between host and plugin), so it is plain data on purpose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One tensor as a flat row-major `f32` buffer and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorData {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl TensorData {
    /// A tensor from its shape and row-major data; the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(Error::param(
                "<tensor>",
                format!(
                    "shape {shape:?} needs {expected} values, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes this tensor occupies on the wire (f32 payload).
    pub fn num_bytes(&self) -> u64 {
        self.data.len() as u64 * 4
    }

    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// Named tensors in name order. Names follow PEFT
/// (`encoder.layer.0.attention.self.query.lora_A.weight`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    tensors: BTreeMap<String, TensorData>,
}

impl ParamSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) a tensor, checking that data and shape agree.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        data: Vec<f32>,
    ) -> Result<()> {
        let name = name.into();
        let tensor = TensorData::new(shape, data).map_err(|e| match e {
            Error::Param { message, .. } => Error::param(name.clone(), message),
            other => other,
        })?;
        self.tensors.insert(name, tensor);
        Ok(())
    }

    /// Inserts an already-built tensor.
    pub fn insert_tensor(&mut self, name: impl Into<String>, tensor: TensorData) {
        self.tensors.insert(name.into(), tensor);
    }

    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut TensorData> {
        self.tensors.get_mut(name)
    }

    /// A tensor that must exist.
    pub fn require(&self, name: &str) -> Result<&TensorData> {
        self.get(name)
            .ok_or_else(|| Error::param(name, "missing from the parameter set"))
    }

    pub fn remove(&mut self, name: &str) -> Option<TensorData> {
        self.tensors.remove(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensors in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &TensorData)> {
        self.tensors.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// Total number of scalar values.
    pub fn num_values(&self) -> usize {
        self.tensors.values().map(TensorData::len).sum()
    }

    /// Bytes of tensor payload: what an exchange of this set costs on the wire.
    pub fn num_bytes(&self) -> u64 {
        self.tensors.values().map(TensorData::num_bytes).sum()
    }

    /// The first tensor holding a NaN or infinity, if any.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.tensors
            .iter()
            .find(|(_, t)| !t.is_finite())
            .map(|(n, _)| n.as_str())
    }

    /// The subset whose names satisfy `keep`.
    #[must_use]
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> ParamSet {
        ParamSet {
            tensors: self
                .tensors
                .iter()
                .filter(|(n, _)| keep(n))
                .map(|(n, t)| (n.clone(), t.clone()))
                .collect(),
        }
    }

    /// Overwrites this set's tensors with those of `other` (adding new names).
    pub fn extend(&mut self, other: ParamSet) {
        self.tensors.extend(other.tensors);
    }

    /// Checks that `other` has exactly the same names and shapes as `self`.
    pub fn check_same_layout(&self, other: &ParamSet) -> Result<()> {
        for (name, t) in &self.tensors {
            let o = other.require(name)?;
            if o.shape() != t.shape() {
                return Err(Error::param(
                    name,
                    format!("shape {:?} where {:?} was expected", o.shape(), t.shape()),
                ));
            }
        }
        if let Some(extra) = other.names().find(|n| !self.contains(n)) {
            return Err(Error::param(
                extra.clone(),
                "not expected in this parameter set",
            ));
        }
        Ok(())
    }
}

impl FromIterator<(String, TensorData)> for ParamSet {
    fn from_iter<I: IntoIterator<Item = (String, TensorData)>>(iter: I) -> Self {
        Self {
            tensors: iter.into_iter().collect(),
        }
    }
}

impl IntoIterator for ParamSet {
    type Item = (String, TensorData);
    type IntoIter = std::collections::btree_map::IntoIter<String, TensorData>;

    fn into_iter(self) -> Self::IntoIter {
        self.tensors.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_checks_shape_and_names_the_tensor() {
        let mut p = ParamSet::new();
        let err = p
            .insert("w", vec![2, 2], vec![1.0; 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`w`") && err.contains("needs 4"), "{err}");
        p.insert("w", vec![2, 2], vec![1.0; 4]).unwrap();
        assert_eq!(p.num_bytes(), 16);
    }

    #[test]
    fn order_is_by_name_and_filter_keeps_order() {
        let mut p = ParamSet::new();
        for n in ["z", "a", "m"] {
            p.insert(n, vec![1], vec![0.0]).unwrap();
        }
        let names: Vec<_> = p.names().cloned().collect();
        assert_eq!(names, ["a", "m", "z"]);
        let f = p.filter(|n| n != "m");
        assert_eq!(f.names().cloned().collect::<Vec<_>>(), ["a", "z"]);
    }

    #[test]
    fn layout_mismatch_is_reported() {
        let mut a = ParamSet::new();
        a.insert("x", vec![2], vec![0.0, 0.0]).unwrap();
        let mut b = ParamSet::new();
        b.insert("x", vec![1, 2], vec![0.0, 0.0]).unwrap();
        assert!(
            a.check_same_layout(&b)
                .unwrap_err()
                .to_string()
                .contains("`x`")
        );
        let mut c = a.clone();
        c.insert("y", vec![1], vec![0.0]).unwrap();
        assert!(a.check_same_layout(&c).is_err());
        assert!(a.check_same_layout(&a.clone()).is_ok());
    }

    #[test]
    fn non_finite_is_found() {
        let mut p = ParamSet::new();
        p.insert("ok", vec![1], vec![1.0]).unwrap();
        assert!(p.first_non_finite().is_none());
        p.insert("bad", vec![2], vec![1.0, f32::NAN]).unwrap();
        assert_eq!(p.first_non_finite(), Some("bad"));
    }
}
