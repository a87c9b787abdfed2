//! ONBUILD triggers: the ones a stage's base recorded (`config.OnBuild`) run right after
//! its FROM, as Docker does, each as a step of its own (`ONBUILD RUN …` in the history, as
//! BuildKit writes it), and the stage keeps none of them. Errors name the FROM line: the
//! trigger's text came from the base image, not from this file. A trigger that is invalid
//! or fails leaves the stage's root tagged `:failed`, as any failing step does.

use std::path::Path;

use super::{BuildError, Engine, StageState, validate};
use crate::containerfile::{self, BuildArgs, Instruction, Kind, ParseError, Span};

impl Engine<'_> {
    /// Runs the triggers of stage `index`'s base in `st`, taking them out of its config.
    pub(super) fn onbuild_triggers(
        &mut self,
        st: &mut StageState,
        index: usize,
        bargs: &BuildArgs,
    ) -> Result<(), BuildError> {
        let texts = std::mem::take(&mut st.config.on_build);
        if texts.is_empty() {
            return Ok(());
        }
        let from = &self.file.stages[index].from;
        let triggers = texts
            .iter()
            .map(|t| self.trigger(t, from, index, bargs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error_failed(st, &from.span.logical, e))?;
        let n = triggers.len();
        self.reporter.line(&format!(
            "--> Executing {n} build trigger{} of the base image",
            if n == 1 { "" } else { "s" }
        ));
        self.total += n;
        for inst in &triggers {
            self.earlier_stages_for(inst, index, bargs)?;
            self.announce(inst, &inst.span.logical);
            if let Err(e) = self.instruction(st, inst) {
                return Err(self.error_failed(st, &inst.span.logical, e));
            }
        }
        Ok(())
    }

    /// Trigger `text`, parsed and checked as the file's own instructions are, placed at
    /// the stage's FROM.
    fn trigger(
        &self,
        text: &str,
        from: &Instruction,
        index: usize,
        bargs: &BuildArgs,
    ) -> Result<Instruction, BuildError> {
        let origin = format!("{} (ONBUILD of the base image)", self.opts.file.display());
        let parsed = containerfile::parse_trigger(text, Path::new(&origin))
            .map_err(|e| trigger_error(self, from, text, e))?;
        let inst = at_from(parsed, from);
        let check = validate::Check {
            file: self.file,
            path: &self.opts.file,
            bargs,
            secrets: &self.opts.secrets,
        };
        check
            .flags(&inst, index)
            .map_err(|e| anyhow::Error::from(e).into())
            .map(|()| inst)
    }

    /// Builds the earlier stages `inst` takes files from (`COPY --from`, a mount's `from`)
    /// that the build did not need until now.
    fn earlier_stages_for(
        &mut self,
        inst: &Instruction,
        index: usize,
        bargs: &BuildArgs,
    ) -> Result<(), BuildError> {
        let gv = bargs.global_vars();
        let mut refs: Vec<String> = Vec::new();
        match &inst.kind {
            Kind::Copy { .. } | Kind::Add { .. } => {
                refs.extend(inst.flag("from").map(str::to_owned));
            }
            Kind::Run { .. } => {
                for mount in inst.flag_values("mount") {
                    let from = mount.split(',').find_map(|f| f.strip_prefix("from="));
                    refs.extend(from.map(str::to_owned));
                }
            }
            _ => {}
        }
        for r in refs {
            let name = containerfile::expand_word(&r, &gv, self.file.escape)
                .unwrap_or(r)
                .to_ascii_lowercase();
            let dep = self.file.stages[..index]
                .iter()
                .find(|s| s.name.as_deref() == Some(name.as_str()) || s.index.to_string() == name)
                .map(|s| s.index);
            if let Some(dep) = dep
                && !self.stages.contains_key(&dep)
            {
                self.total += self.file.stages[dep].instructions.len() + 1;
                self.build_stage(dep, bargs)?;
            }
        }
        Ok(())
    }
}

/// `inst` placed at `from` for its messages, shown as `ONBUILD <trigger>`.
fn at_from(inst: Instruction, from: &Instruction) -> Instruction {
    let logical = format!("ONBUILD {}", inst.span.logical);
    Instruction {
        span: Span {
            line: from.span.line,
            column: from.span.column,
            end_line: from.span.end_line,
            text: from.span.text.clone(),
            logical,
            flag_at: Vec::new(),
        },
        ..inst
    }
}

/// A trigger that does not parse: the error names the FROM line and the trigger.
fn trigger_error(e: &Engine<'_>, from: &Instruction, text: &str, err: ParseError) -> BuildError {
    let first = text.lines().next().unwrap_or_default();
    anyhow::Error::new(ParseError::at_instruction(
        &e.opts.file,
        from,
        format!(
            "the base image's ONBUILD trigger `{first}` is invalid: {}",
            err.message
        ),
        err.hint,
    ))
    .into()
}
