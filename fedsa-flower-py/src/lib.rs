//! `fedsa_flower`, the Python module: what Flower's ServerApp and ClientApp call.
//!
//! - `handle(node_config, header, tensors)`: a node answers one message (the ClientApp);
//! - `serve(config_path, link, resume, connect_timeout_s)`: the server runs a whole fedsa run
//!   on the nodes behind `link`, a Python object with `node_ids()`, `push(node, header,
//!   tensors) -> ticket` and `pull(ticket) -> (header, tensors)` (the ServerApp's `Grid`).
//!
//! Tensors cross as a list of `(name, shape, data)` with `data` the little-endian f32 bytes;
//! the Python side turns them into NumPy arrays for Flower's `ArrayRecord`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fedsa_core::{Config, ConfigSource, Event};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use remote::{Envelope, Link, NodeSettings, ServeOptions, WireTensor};

type PyTensor = (String, Vec<usize>, Vec<u8>);

fn to_py<'py>(py: Python<'py>, tensors: &[WireTensor]) -> PyResult<Bound<'py, PyList>> {
    let items = tensors
        .iter()
        .map(|t| {
            let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            PyTuple::new(
                py,
                [
                    t.name.clone().into_pyobject(py)?.into_any(),
                    t.shape.clone().into_pyobject(py)?.into_any(),
                    PyBytes::new(py, &bytes).into_any(),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn from_py(tensors: Vec<PyTensor>) -> PyResult<Vec<WireTensor>> {
    tensors
        .into_iter()
        .map(|(name, shape, bytes)| {
            if bytes.len() % 4 != 0 {
                return Err(PyValueError::new_err(format!(
                    "tensor `{name}`: {} bytes is not a whole number of f32 values",
                    bytes.len()
                )));
            }
            let data = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(WireTensor { name, shape, data })
        })
        .collect()
}

/// A node answers one message. Errors in the node config raise `ValueError`; everything
/// else comes back as an error reply for the server to record.
#[pyfunction]
// PyO3 hands arguments over owned.
#[allow(clippy::needless_pass_by_value)]
fn handle(
    py: Python<'_>,
    node_config: BTreeMap<String, String>,
    header: String,
    tensors: Vec<PyTensor>,
) -> PyResult<(String, Bound<'_, PyList>)> {
    let settings = NodeSettings::from_node_config(&node_config)
        .map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
    let request = Envelope {
        header,
        tensors: from_py(tensors)?,
    };
    // Training runs without the interpreter lock, on the trainer's own threads.
    let reply = py.detach(|| remote::handle(&settings, &request));
    Ok((reply.header, to_py(py, &reply.tensors)?))
}

/// The ServerApp's `Grid`, through its Python wrapper.
struct PyLink(Py<PyAny>);

fn py_error(e: &PyErr) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl Link for PyLink {
    fn node_ids(&mut self) -> anyhow::Result<Vec<u64>> {
        Python::attach(|py| self.0.call_method0(py, "node_ids")?.extract::<Vec<u64>>(py))
            .map_err(|e| py_error(&e))
    }

    fn push(&mut self, node: u64, message: Envelope) -> anyhow::Result<u64> {
        Python::attach(|py| {
            let tensors = to_py(py, &message.tensors)?;
            self.0
                .call_method1(py, "push", (node, message.header, tensors))?
                .extract::<u64>(py)
        })
        .map_err(|e| py_error(&e))
    }

    fn pull(&mut self, ticket: u64) -> anyhow::Result<Envelope> {
        let (header, tensors) = Python::attach(|py| {
            self.0
                .call_method1(py, "pull", (ticket,))?
                .extract::<(String, Vec<PyTensor>)>(py)
        })
        .map_err(|e| py_error(&e))?;
        Ok(Envelope {
            header,
            tensors: from_py(tensors).map_err(|e| py_error(&e))?,
        })
    }
}

/// Runs the fedsa config at `config_path` on the nodes behind `link`; hands `on_line` a line
/// per round (and per failure and log message); returns the summary as JSON. Raises
/// `RuntimeError` when the run fails.
#[pyfunction]
#[pyo3(signature = (config_path, link, on_line, resume = false, connect_timeout_s = 120.0))]
// PyO3 hands arguments over owned.
#[allow(clippy::needless_pass_by_value)]
fn serve(
    py: Python<'_>,
    config_path: String,
    link: Py<PyAny>,
    on_line: Py<PyAny>,
    resume: bool,
    connect_timeout_s: f64,
) -> PyResult<String> {
    let path = Path::new(&config_path);
    let config = Config::load(path).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let options = ServeOptions {
        run: fedsa_engine::RunOptions {
            resume,
            source: ConfigSource::file(config_path.clone()),
        },
        connect_timeout: Duration::from_secs_f64(connect_timeout_s.max(0.0)),
    };
    let mut rounds = 0;
    // Through Python: Flower forwards what the ServerApp prints with Python, not the
    // process's own stdout.
    let sink = Box::new(move |event: Event| {
        if let Some(line) = remote::lines::line(&event, &mut rounds) {
            Python::attach(|py| {
                if let Err(e) = on_line.call1(py, (line,)) {
                    e.print(py);
                }
            });
        }
    });
    let stop = AtomicBool::new(false);
    let summary = py
        .detach(|| remote::serve(&config, &options, Box::new(PyLink(link)), sink, &stop))
        .map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))?;
    serde_json::to_string(&summary).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

#[pymodule]
#[pyo3(name = "fedsa_flower")]
fn python_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(handle, m)?)?;
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add("NODE_CONFIG_KEYS", remote::node::NODE_CONFIG_KEYS.to_vec())?;
    Ok(())
}
