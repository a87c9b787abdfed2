//! `--secret id=ID[,src=FILE|,env=VARIABLE][,type=file|env]`, buildx's syntax: the values
//! `RUN --mount=type=secret` shows. With neither `src` nor `env`, the variable named ID
//! when it is set, else the file named ID (BuildKit's `secretsprovider`).

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};

use crate::build::Secret;
use crate::cli::Env;

/// BuildKit's limit (`secretsprovider.MaxSecretSize`).
const MAX_SIZE: u64 = 500 * 1024;

/// Where a secret's value comes from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    File(String),
    Env(String),
}

/// The secrets of `--secret` options, read (files) or looked up (variables) now.
pub fn parse(specs: &[String], env: &Env) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, source) = parse_one(spec).with_context(|| format!("--secret `{spec}`"))?;
        let value = read(&id, source, env).with_context(|| format!("--secret `{spec}`"))?;
        out.insert(id, value);
    }
    Ok(out)
}

/// The id and source of one `--secret`.
fn parse_one(spec: &str) -> anyhow::Result<(String, Option<Source>)> {
    let (mut id, mut src, mut var, mut kind) = (None, None, None, None);
    for field in spec.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            bail!("invalid field '{field}' must be a key=value pair");
        };
        let value = value.to_owned();
        match key.to_ascii_lowercase().as_str() {
            "id" => id = Some(value),
            "src" | "source" => src = Some(value),
            "env" => var = Some(value),
            "type" if value == "file" || value == "env" => kind = Some(value),
            "type" => bail!("unsupported secret type \"{value}\" (file or env)"),
            other => bail!("unexpected key '{other}' in '{field}' (id, src, env or type)"),
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .context("a secret needs an id: `--secret id=NAME,src=FILE`")?;
    let source = match (kind.as_deref(), src, var) {
        (_, Some(_), Some(_)) => bail!("give src= or env=, not both"),
        (Some("env"), Some(name), None) | (_, None, Some(name)) => Some(Source::Env(name)),
        (Some("env"), None, None) => Some(Source::Env(id.clone())),
        (_, Some(path), None) => Some(Source::File(path)),
        (_, None, None) => None,
    };
    Ok((id, source))
}

fn read(id: &str, source: Option<Source>, env: &Env) -> anyhow::Result<Secret> {
    let lookup = |name: &str| env.var.and_then(|get| get(name));
    let source = source.unwrap_or_else(|| match lookup(id) {
        Some(_) => Source::Env(id.to_owned()),
        None => Source::File(id.to_owned()),
    });
    match source {
        Source::Env(name) => {
            let value = lookup(&name)
                .with_context(|| format!("the environment variable {name} is not set"))?;
            Ok(Secret::new(value.into_bytes()))
        }
        Source::File(path) => {
            let size = fs_err::metadata(&path)?.len();
            if size > MAX_SIZE {
                bail!("secret {id} too big: {size} bytes, the limit is {MAX_SIZE}");
            }
            Ok(Secret::new(fs_err::read(&path)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_forms() {
        let p = |s| parse_one(s).unwrap();
        assert_eq!(
            p("id=a,src=/f"),
            ("a".into(), Some(Source::File("/f".into())))
        );
        assert_eq!(
            p("id=a,source=/f"),
            ("a".into(), Some(Source::File("/f".into())))
        );
        assert_eq!(
            p("id=a,env=TOKEN"),
            ("a".into(), Some(Source::Env("TOKEN".into())))
        );
        assert_eq!(
            p("id=a,type=env,src=T"),
            ("a".into(), Some(Source::Env("T".into())))
        );
        assert_eq!(
            p("type=env,id=a"),
            ("a".into(), Some(Source::Env("a".into())))
        );
        assert_eq!(p("id=a"), ("a".into(), None));
        for bad in [
            "src=/f",
            "id=a,src=/f,env=X",
            "id=a,type=ssh",
            "id=a,foo=b",
            "id=a,x",
        ] {
            assert!(parse_one(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_come_from_files_and_variables() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("tok");
        fs_err::write(&f, "from-file").unwrap();
        let env = Env {
            var: Some(|name| (name == "TOK").then(|| "from-env".to_owned())),
            ..Env::default()
        };
        let specs = [
            format!("id=a,src={}", f.display()),
            "id=b,env=TOK".to_owned(),
            "id=TOK".to_owned(),
        ];
        let got = parse(&specs, &env).unwrap();
        assert_eq!(got["a"].bytes(), b"from-file");
        assert_eq!(got["b"].bytes(), b"from-env");
        assert_eq!(got["TOK"].bytes(), b"from-env");
        assert!(parse(&["id=c,env=UNSET".to_owned()], &env).is_err());
        fs_err::write(&f, vec![b'x'; 600 * 1024]).unwrap();
        let e = parse(&[format!("id=a,src={}", f.display())], &env).unwrap_err();
        assert!(format!("{e:#}").contains("too big"));
    }
}
