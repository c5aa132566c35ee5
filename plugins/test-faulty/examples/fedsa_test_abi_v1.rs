//! A version-1 aggregator plugin, registered as `test_abi_v1`: the table an older plugin
//! exports (version 1, the version-1 size, no module entry), for testing that the host keeps
//! loading and running such plugins. The rule is the example-weighted mean plus a marker of 1000
//! on every value, so a test can tell that this plugin, tensor by tensor, made the aggregate.
//!
//! Its type does have a module rule, which a version-1 table cannot carry; and the table is
//! followed by a non-null word where a version-2 table has its module entry, so a host that
//! read this table with the version-2 layout would see a module rule and fail the test.
//! (Exporting a table by hand takes `#[unsafe(no_mangle)]`; `export_aggregator!` exports the
//! current version only.)

use fedsa_plugin_api::{
    AggregatorPlugin, ClientFactors, ModuleFactors, ModuleOutcome, Options, PluginDescriptor,
    PluginDescriptorV1,
};

/// The added marker.
const MARKER: f64 = 1000.0;

/// The weighted mean plus [`MARKER`].
pub struct MarkedMean;

impl AggregatorPlugin for MarkedMean {
    const MODULE_RULE: bool = true;

    fn new(config: &str) -> Result<Self, String> {
        Options::parse(config)?.finish(&[])?;
        Ok(Self)
    }

    fn aggregate(
        &mut self,
        _round: u64,
        _tensor: &str,
        _global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        for (j, o) in out.iter_mut().enumerate() {
            let mean: f64 = clients
                .iter()
                .zip(weights)
                .map(|(c, w)| w * f64::from(c[j]))
                .sum();
            *o = (mean + MARKER) as f32;
        }
        Ok(())
    }

    fn aggregate_module(
        &mut self,
        _round: u64,
        module: &ModuleFactors<'_>,
        _clients: &[ClientFactors<'_>],
        _out_a: &mut [f32],
        _out_b: &mut [f32],
    ) -> Result<ModuleOutcome, String> {
        Err(format!(
            "module `{}`: a version-1 table has no module entry, so this is never called",
            module.name
        ))
    }
}

/// The version-1 table and, after it, what a version-2 host must not read.
#[repr(C)]
pub struct V1WithTrailer {
    pub table: PluginDescriptorV1,
    /// Where a version-2 table has `aggregate_module`: not null, and not a function.
    pub after: usize,
}

/// The exported version-1 table.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static fedsa_plugin_v1: V1WithTrailer = V1WithTrailer {
    table: PluginDescriptor::aggregator::<MarkedMean>("test_abi_v1").to_v1(),
    after: 1,
};
