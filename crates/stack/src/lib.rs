//! berth's declarative stack file (`berth.yaml`): parsing, validation with every error's field
//! path, and the plan that turns the file plus the cluster's current services and ELBv2
//! resources into changes.
//! Pure logic; the only IO is reading the stack file and the task definition files it names.

pub mod elb;
mod parse;
mod plan;
pub mod scaling;
mod spec;
mod vars;

pub use elb::{
    ActionSpec, ConditionsSpec, ForwardSpec, HealthCheckSpec, ListenerSpec, LoadBalancerSpec,
    RuleSpec, TargetGroupSpec,
};
pub use plan::elb::{ElbOp, ElbRefs};
pub use plan::scaling::{CurrentScaling, ScalingOp};
pub use plan::{plan, Change, ChangeKind, CurrentService, Plan, Resource};
pub use scaling::{ScalingMetric, ScalingSpec, ScheduledSpec, TargetTrackingSpec};
pub use spec::{
    ArnResolver, ListenerRuleRef, ServiceLoadBalancer, ServiceSpec, Stack, TrafficShiftTargets,
    DEFAULT_CLUSTER, STACK_TAG,
};

use berth_model::FieldErrors;
use std::path::{Path, PathBuf};

/// Why a stack file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The stack file itself could not be read.
    #[error("cannot read stack file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML (or JSON) at all.
    #[error("stack file is not valid YAML: {0}")]
    Syntax(String),
    /// The file parsed but is not a valid stack; every problem is listed.
    #[error("invalid stack file:\n{0}")]
    Invalid(FieldErrors),
}

/// Reads, parses and validates the stack file at `path`; `taskDefinitionFile`s are resolved
/// relative to the file's folder, and `${NAME}` / `${NAME:-default}` in string values take the
/// process's environment variables.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|source| StackError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or_else(|| Path::new(""));
    parse_with_vars(&text, base_dir, &|name| std::env::var(name).ok())
}

/// Deepest nesting of mappings and lists a stack file may have.
pub const MAX_DEPTH: usize = 64;

/// Parses and validates stack text (YAML, or JSON which is YAML too); `taskDefinitionFile`s are
/// resolved relative to `base_dir`. No variable is set: `${NAME:-default}` takes its default.
pub fn parse(text: &str, base_dir: &Path) -> Result<Stack, StackError> {
    parse_with_vars(text, base_dir, &|_| None)
}

/// `parse` with `${NAME}` / `${NAME:-default}` in string values looked up with `vars`.
pub fn parse_with_vars(
    text: &str,
    base_dir: &Path,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Stack, StackError> {
    let options = serde_saphyr::Options {
        // `yes`/`no`/`on`/`off` stay strings, as in YAML 1.2 and JSON.
        strict_booleans: true,
        // A stack file nests a dozen levels and holds thousands of nodes: these limits refuse
        // deep nesting (which would overflow the stack) and alias bombs with a syntax error.
        budget: Some(serde_saphyr::Budget {
            max_depth: MAX_DEPTH,
            max_nodes: 200_000,
            max_reader_input_bytes: Some(16 * 1024 * 1024),
            max_total_scalar_bytes: 16 * 1024 * 1024,
            ..serde_saphyr::Budget::default()
        }),
        alias_limits: serde_saphyr::options::AliasLimits {
            max_total_replayed_events: 100_000,
            ..serde_saphyr::options::AliasLimits::default()
        },
        ..serde_saphyr::Options::default()
    };
    let mut doc: serde_json::Value = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| StackError::Syntax(e.to_string()))?;
    let mut errs = FieldErrors::default();
    vars::expand(&mut doc, "", vars, &mut errs);
    errs.into_result().map_err(StackError::Invalid)?;
    parse::stack_from_value(&doc, base_dir).map_err(StackError::Invalid)
}
