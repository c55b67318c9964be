//! [`Policy`]: one compiled Rego module and how a decision is read from it.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use regorus::languages::rego::compiler::{Compiler, CompilerError, SpannedCompilerError};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use super::error::{Location, PolicyError, Report};
use super::input::PolicyInput;
use super::verdict::{NOT_ALLOWED, Verdict};

/// How long one evaluation may run before it is abandoned and the call denied.
///
/// Rego always terminates, but a comprehension over a large range can take seconds, and a
/// host call must not wait on it. A decision normally takes microseconds; the limit is
/// generous because it is wall-clock time, so a busy machine that preempts an evaluation
/// must not turn into spurious denials.
pub const EVALUATION_TIME_LIMIT: Duration = Duration::from_millis(250);

/// Rule paths, spelt once.
const DENY: &str = "data.warden.deny";
const ALLOW: &str = "data.warden.allow";
const CACHEABLE: &str = "data.warden.cacheable";

/// Gives every compiled policy its own identity, so that a [`PolicyCache`] shared by
/// mistake between two policies never answers for one with the other's verdict.
///
/// [`PolicyCache`]: super::PolicyCache
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled Rego policy in package `warden`; see the [module docs](super) for what it
/// may define and what each rule means.
///
/// Compile once, at manifest load, then evaluate from any number of tasks: `Policy` is
/// `Send + Sync`, and [`evaluate`](Policy::evaluate) takes `&self` (each evaluation works
/// on a cheap clone of the prepared regorus engine, which shares the compiled modules).
#[derive(Clone)]
pub struct Policy {
    name: Arc<str>,
    id: u64,
    /// Prepared: parsed, analysed and scheduled, so a clone evaluates without redoing it.
    engine: Engine,
    rules: Rules,
}

/// Which of the rules Warden reads the module declares; an undeclared rule is never
/// evaluated, since regorus treats asking for one as an error.
#[derive(Debug, Clone, Copy)]
struct Rules {
    deny: bool,
    allow: bool,
    cacheable: bool,
}

impl Policy {
    /// Reads and compiles the Rego module at `path`; errors name the path as given.
    ///
    /// # Ambient Authority
    ///
    /// Reads `path` with the authority of the process.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Policy::from_source(&path.display().to_string(), &text)
    }

    /// Compiles the Rego module `text`; `name` stands for its file in errors and denials.
    ///
    /// Refused, with the line where the compiler could tell: a syntax error, a package
    /// other than `warden`, a module that defines neither `deny` nor `allow`, a variable
    /// that is used unsafely, and a call to a function that neither the module nor
    /// regorus defines (a misspelt built-in, or a `time.*` built-in).
    ///
    /// ```
    /// use warden_host_api::policy::Policy;
    ///
    /// let err = Policy::from_source("p.rego", "package warden\n\ndeny contains msg if {\n  x == 1\n}\n")
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "p.rego:4:3: use of undefined variable `x` is unsafe");
    /// ```
    pub fn from_source(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let mut engine = Engine::new();
        // A built-in that fails (`to_number("high")`) is an error, not undefined: an
        // undefined condition in a deny rule would silently allow the call.
        engine.set_strict_builtin_errors(true);
        // `print` would write to warden's stderr, which carries the tool's own stderr;
        // gathered output dies with the evaluation's clone.
        engine.set_gather_prints(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_TIME_LIMIT,
            check_interval: NonZeroU32::new(256).unwrap_or(NonZeroU32::MIN),
        });
        let package = engine
            .add_policy(name.to_owned(), text.to_owned())
            .map_err(|e| PolicyError::compile(name, &e))?;
        if package != "data.warden" {
            return Err(PolicyError::Package {
                file: name.to_owned(),
                line: package_line(text),
                found: package.strip_prefix("data.").unwrap_or(&package).to_owned(),
            });
        }
        let declared = |rule: &str| {
            engine
                .has_declared_rule_rooted_at(name, rule)
                .map_err(|e| PolicyError::compile(name, &e))
        };
        let rules = Rules {
            deny: declared("deny")?,
            allow: declared("allow")?,
            cacheable: declared("cacheable")?,
        };
        if !rules.deny && !rules.allow {
            return Err(PolicyError::NoDecision {
                file: name.to_owned(),
            });
        }
        // Prepares the engine (analysis finds unsafe variables), so that every clone
        // evaluates without redoing it.
        let entry = if rules.deny { DENY } else { ALLOW };
        let compiled = engine
            .compile_with_entrypoint(&entry.into())
            .map_err(|e| PolicyError::compile(name, &e))?;
        check_functions(name, &compiled, rules)?;
        Ok(Policy {
            name: name.into(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            engine,
            rules,
        })
    }

    /// The name the policy was compiled as: the path given to [`load`](Policy::load).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the module defines `allow`, which makes it an allow-list.
    pub fn has_allow(&self) -> bool {
        self.rules.allow
    }

    /// Whether the module defines `cacheable`, which lets some verdicts be cached.
    pub fn has_cacheable(&self) -> bool {
        self.rules.cacheable
    }

    /// This compiled policy's identity, unique in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Decides one call. Never fails: an evaluation error (a type error, a rule with
    /// conflicting values, [`EVALUATION_TIME_LIMIT`] exceeded) is a denial whose message
    /// starts with `policy error:` and names the line, and is never cacheable.
    ///
    /// ```
    /// use warden_host_api::policy::{CallInfo, CallKind, GrantInfo, Policy, PolicyInput, PolicyTime};
    ///
    /// let policy = Policy::from_source("no-env.rego", r#"
    ///     package warden
    ///     deny contains "no environment" if input.call.kind == "env"
    /// "#).unwrap();
    /// let input = PolicyInput {
    ///     agent: None,
    ///     tool: "t".into(),
    ///     task: "1".into(),
    ///     grant: GrantInfo::root("g", None),
    ///     call: CallInfo::new("wasi:cli/environment.get-environment", CallKind::Env),
    ///     resource: None,
    ///     method: None,
    ///     context: Default::default(),
    ///     client: Default::default(),
    ///     time: PolicyTime::now(),
    /// };
    /// let verdict = policy.evaluate(&input);
    /// assert!(!verdict.allowed);
    /// assert_eq!(verdict.messages, ["no environment"]);
    /// ```
    pub fn evaluate(&self, input: &PolicyInput) -> Verdict {
        self.evaluate_document(input.document())
    }

    /// [`evaluate`](Self::evaluate) for an input already made a regorus document, or the
    /// reason it could not be, which denies like any evaluation error.
    pub(crate) fn evaluate_document(&self, input: Result<Value, String>) -> Verdict {
        input
            .and_then(|document| self.try_evaluate(document))
            .unwrap_or_else(Verdict::error)
    }

    fn try_evaluate(&self, input: Value) -> Result<Verdict, String> {
        let mut engine = self.engine.clone();
        engine.set_input(input);

        let mut messages = Vec::new();
        if self.rules.deny {
            deny_messages(self.eval(&mut engine, DENY)?, &mut messages)?;
        }
        // Deny wins, so `allow` is asked only when nothing denied.
        if messages.is_empty() && self.rules.allow {
            match self.eval(&mut engine, ALLOW)? {
                Value::Bool(true) => {}
                Value::Bool(false) | Value::Undefined => messages.push(NOT_ALLOWED.to_owned()),
                other => return Err(format!("allow must be true or false, found {other}")),
            }
        }
        let cacheable = self.rules.cacheable
            && match self.eval(&mut engine, CACHEABLE)? {
                Value::Bool(b) => b,
                Value::Undefined => false,
                other => return Err(format!("cacheable must be true or false, found {other}")),
            };
        Ok(Verdict {
            allowed: messages.is_empty(),
            messages,
            cacheable,
        })
    }

    fn eval(&self, engine: &mut Engine, rule: &str) -> Result<Value, String> {
        engine.eval_rule(rule.to_owned()).map_err(|e| {
            let report = Report::parse(&format!("{e:#}"));
            let location = Location {
                file: report.file.as_deref().unwrap_or(&self.name),
                line: report.line,
                column: report.column,
            };
            format!("{location}: {}", report.message)
        })
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The engine's Debug prints every parsed module: noise in a manifest's Debug.
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Reads `deny` into messages: a set (or array) of messages, each a string or else shown
/// as JSON; `true` for a boolean `deny if ...`; nothing for false or undefined.
fn deny_messages(value: Value, messages: &mut Vec<String>) -> Result<(), String> {
    let items: Vec<&Value> = match &value {
        Value::Set(set) => set.iter().collect(),
        Value::Array(array) => array.iter().collect(),
        Value::Bool(true) => {
            messages.push("deny is true".to_owned());
            return Ok(());
        }
        Value::String(message) => {
            messages.push(message.to_string());
            return Ok(());
        }
        Value::Bool(false) | Value::Undefined => return Ok(()),
        other => return Err(format!("deny must be a set of messages, found {other}")),
    };
    for item in items {
        messages.push(match item {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        });
    }
    Ok(())
}

/// The 1-based line of the `package` declaration, for the wrong-package error.
fn package_line(text: &str) -> u32 {
    text.lines()
        .position(|line| line.trim_start().starts_with("package"))
        .map_or(1, |i| u32::try_from(i + 1).unwrap_or(u32::MAX))
}

/// Refuses a call to a function that does not exist, at load rather than at the first
/// call that reaches it.
///
/// regorus's interpreter looks functions up only when it evaluates a call, so a misspelt
/// built-in in a rule that rarely fires would surface as a policy error in production.
/// Its bytecode compiler resolves every call up front; Warden runs it for that check
/// alone and evaluates with the interpreter. The compiler does not yet support all of
/// Rego (`with`, some partial object rules): those errors are no verdict on the policy and
/// are ignored here, so the check is best effort and never refuses valid Rego.
fn check_functions(
    name: &str,
    compiled: &regorus::CompiledPolicy,
    rules: Rules,
) -> Result<(), PolicyError> {
    let entries: Vec<&str> = [
        (rules.deny, DENY),
        (rules.allow, ALLOW),
        (rules.cacheable, CACHEABLE),
    ]
    .into_iter()
    .filter_map(|(declared, path)| declared.then_some(path))
    .collect();
    let Err(error) = Compiler::compile_from_policy(compiled, &entries) else {
        return Ok(());
    };
    let Some((function, line, column)) = unknown_function(&error) else {
        return Ok(());
    };
    let hint = if function.starts_with("time.") {
        ": the time built-ins are not available, read input.time instead"
    } else {
        ": neither a regorus built-in nor a function of this module"
    };
    Err(PolicyError::Compile {
        file: name.to_owned(),
        line,
        column,
        message: format!("unknown function {function}{hint}"),
    })
}

/// The unknown function a bytecode-compiler error is about, and where it is called.
///
/// The compiler reports it as its own variant, or, inside an assignment, wrapped in a
/// general error whose text holds the located report; the innermost report names the call.
fn unknown_function(error: &SpannedCompilerError) -> Option<(String, Option<u32>, Option<u32>)> {
    if let CompilerError::UnknownFunction { name } = &error.error {
        let span = error.span.as_ref();
        return Some((name.clone(), span.map(|s| s.line), span.map(|s| s.col)));
    }
    let text = error.to_string();
    let report = Report::parse(&text[text.rfind("--> ")?..]);
    let function = report
        .message
        .strip_prefix("unknown function: '")?
        .strip_suffix('\'')?;
    Some((function.to_owned(), report.line, report.column))
}
