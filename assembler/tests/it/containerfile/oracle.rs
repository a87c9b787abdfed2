//! parse-dockerfile (taiki-e) as an independent oracle: over a corpus of valid files,
//! both parsers see the same instructions on the same lines.

use super::*;
use parse_dockerfile::Instruction as O;

fn oracle(src: &str) -> Vec<(String, usize)> {
    let file = parse_dockerfile::parse(src).unwrap_or_else(|e| panic!("oracle: {e}\n{src}"));
    let line = |offset: usize| src[..offset].matches('\n').count() + 1;
    file.instructions
        .iter()
        .map(|i| {
            let (name, span) = match i {
                O::Add(x) => ("ADD", &x.add.span),
                O::Arg(x) => ("ARG", &x.arg.span),
                O::Cmd(x) => ("CMD", &x.cmd.span),
                O::Copy(x) => ("COPY", &x.copy.span),
                O::Entrypoint(x) => ("ENTRYPOINT", &x.entrypoint.span),
                O::Env(x) => ("ENV", &x.env.span),
                O::Expose(x) => ("EXPOSE", &x.expose.span),
                O::From(x) => ("FROM", &x.from.span),
                O::Healthcheck(x) => ("HEALTHCHECK", &x.healthcheck.span),
                O::Label(x) => ("LABEL", &x.label.span),
                O::Maintainer(x) => ("MAINTAINER", &x.maintainer.span),
                O::Onbuild(x) => ("ONBUILD", &x.onbuild.span),
                O::Run(x) => ("RUN", &x.run.span),
                O::Shell(x) => ("SHELL", &x.shell.span),
                O::Stopsignal(x) => ("STOPSIGNAL", &x.stopsignal.span),
                O::User(x) => ("USER", &x.user.span),
                O::Volume(x) => ("VOLUME", &x.volume.span),
                O::Workdir(x) => ("WORKDIR", &x.workdir.span),
                other => panic!("instruction unknown to this test: {other:?}"),
            };
            (name.to_owned(), line(span.start))
        })
        .collect()
}

fn ours(src: &str) -> Vec<(String, usize)> {
    let cf = p(src);
    cf.global_arg_instructions
        .iter()
        .chain(
            cf.stages
                .iter()
                .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)),
        )
        .map(|i| (i.name().to_owned(), i.span.line))
        .collect()
}

const CORPUS: &[&str] = &[
    super::round_trip::CORPUS,
    "FROM alpine:3.20\nRUN apk add --no-cache meilisearch=0.25.2-r0\nADD etc /etc\nEXPOSE 7700\n",
    "# escape=`\nFROM mcr.example/windows\nRUN dir `\n  c:\\\nCOPY a b\n",
    "\n\n  # indented comment\n\tFROM a\n\n\nRUN x \\\n  \\\n  y\n# trailing\n",
    "FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nCOPY <<A <<B /d/\n1\nA\n2\nB\nRUN <<-T cat\n\tx\n\tT\nUSER u\n",
    "ARG V=1\nARG R=docker.io\nFROM $R/alpine:$V AS one\nFROM one AS two\nARG V\nRUN echo $V\nFROM scratch\nCOPY --from=two / /\n",
    "FROM a\nENV A=1 \\\n    B=2\nLABEL a=b \\\n      c=\"d e\"\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\nSTOPSIGNAL 9\nWORKDIR /a/b\nVOLUME [\"/x\", \"/y\"]\nVOLUME /z\nONBUILD ADD . /src\nMAINTAINER me\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT [\"/bin/sh\"]\nCMD echo hi\n",
    "from a\nrun true\ncopy --chown=1:1 a b\nadd --checksum=sha256:00 https://x/y /z\n",
];

#[test]
fn same_instructions_on_the_same_lines() {
    for src in CORPUS {
        assert_eq!(ours(src), oracle(src), "corpus file:\n{src}");
    }
}
