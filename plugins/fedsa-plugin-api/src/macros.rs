//! The two macros a plugin author uses. Each expands to the exported descriptor static and
//! nothing else, so the plugin's own code contains no `unsafe`.

/// Exports aggregator plugin `$ty` (an [`AggregatorPlugin`](crate::AggregatorPlugin)) under
/// `$name`, the name configs use in `strategy.aggregator`. Use it once per library. The table
/// is of the current ABI version; its module entry is filled when `$ty` sets
/// [`MODULE_RULE`](crate::AggregatorPlugin::MODULE_RULE).
///
/// ```ignore
/// struct Mean;
/// impl fedsa_plugin_api::AggregatorPlugin for Mean { /* new, aggregate */ }
/// fedsa_plugin_api::export_aggregator!(Mean, "my_mean");
/// ```
#[macro_export]
macro_rules! export_aggregator {
    ($ty:ty, $name:expr $(,)?) => {
        /// The fedsa plugin descriptor of this library.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static fedsa_plugin_v1: $crate::PluginDescriptor =
            $crate::PluginDescriptor::aggregator::<$ty>($name);
    };
}

/// Exports an adapter plugin named `$name` whose spec text is the value of `$spec` (a `&str`
/// constant, a `String`, or a call such as `dora_spec()`), evaluated each time the host asks.
/// Use it once per library.
///
/// ```ignore
/// fedsa_plugin_api::export_adapter!("dora", include_str!("dora.json"));
/// ```
#[macro_export]
macro_rules! export_adapter {
    ($name:expr, $spec:expr $(,)?) => {
        /// The fedsa plugin descriptor of this library.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static fedsa_plugin_v1: $crate::PluginDescriptor = {
            struct Spec;
            impl $crate::AdapterSpecSource for Spec {
                fn spec_text() -> ::std::string::String {
                    ::std::string::String::from($spec)
                }
            }
            $crate::PluginDescriptor::adapter::<Spec>($name)
        };
    };
}
