//! Which stages a build needs: the target and, transitively, the stages it names in
//! `FROM <stage>`, `COPY --from=<stage>` and `RUN --mount=…,from=<stage>` (Docker
//! builds only those, so a broken unused stage does not fail the build).

use super::{Containerfile, Kind, Stage};

// A reference that names no earlier stage is an image (or a context), not a dependency.
impl Containerfile {
    /// Indices of the stages needed to build `target` (itself included), in file order.
    /// `resolve` expands a raw reference (e.g. `$BASE`, `${STAGE}`) with the build's
    /// variables; pass `|s| s.to_owned()` when variables do not matter.
    pub fn needed_stages(&self, target: usize, resolve: &dyn Fn(&str) -> String) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut todo = vec![target.min(self.stages.len().saturating_sub(1))];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut needed[i], true) {
                continue;
            }
            for dep in self.stage_refs(&self.stages[i], resolve) {
                if !needed[dep] {
                    todo.push(dep);
                }
            }
        }
        needed
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.then_some(i))
            .collect()
    }

    /// The earlier stages `stage` refers to.
    fn stage_refs(&self, stage: &Stage, resolve: &dyn Fn(&str) -> String) -> Vec<usize> {
        let earlier = &self.stages[..stage.index];
        let lookup = |raw: &str| -> Option<usize> {
            let name = resolve(raw).to_ascii_lowercase();
            earlier
                .iter()
                .find(|s| s.name.as_deref() == Some(name.as_str()))
                .map(|s| s.index)
                .or_else(|| name.parse::<usize>().ok().filter(|i| *i < stage.index))
        };
        let mut refs = Vec::new();
        // FROM takes names only (a number is an image name there).
        let base = resolve(stage.base()).to_ascii_lowercase();
        if let Some(s) = earlier
            .iter()
            .find(|s| s.name.as_deref() == Some(base.as_str()))
        {
            refs.push(s.index);
        }
        for inst in &stage.instructions {
            match &inst.kind {
                Kind::Copy { .. } => refs.extend(inst.flag("from").and_then(lookup)),
                Kind::Run { .. } => {
                    for mount in inst.flag_values("mount") {
                        let from = mount
                            .split(',')
                            .find_map(|field| field.strip_prefix("from="));
                        refs.extend(from.and_then(lookup));
                    }
                }
                _ => {}
            }
        }
        refs
    }
}
