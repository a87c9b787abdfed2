//! Listeners and process lifecycle: the plain HTTP listener, HTTPS listeners (rustls via
//! axum-server), the HTTP→HTTPS redirect listener, SIGHUP (trusted packager keys and the
//! TLS certificate reloaded, each logged), and graceful shutdown on SIGTERM/SIGINT
//! (in-flight uploads finish; new connections are refused).
//!
//! Every accepted socket gets `TCP_NODELAY`: a response whose body leaves in a second
//! segment must not wait for the client's delayed ACK (40 ms on Linux).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::sync::watch;

use crate::config::{Config, Protocols};
use crate::{AppState, Cli, router, with_hsts};

type Listeners = tokio::task::JoinSet<anyhow::Result<()>>;

/// What SIGHUP reloads of the TLS setup: the live config and where its files are.
type TlsReload = (
    axum_server::tls_rustls::RustlsConfig,
    std::path::PathBuf,
    std::path::PathBuf,
);

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // One process-wide TLS provider for the HTTPS listeners and the JWKS client alike.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Config::load(&cli.config)?;
    if cli.tls_only && config.tls.is_none() {
        anyhow::bail!(
            "-S (TLS only) needs a `tls:` section with `crt` and `key` in `{}`",
            cli.config.display()
        );
    }
    // Installed before any listener exists: a SIGHUP sent once "listening" is logged must
    // reload, not kill the process (SIGHUP's default action).
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let state = AppState::from_config(config.clone(), cli.dev).await?;
    state.repo.reconcile().await?;
    let repo = std::sync::Arc::clone(&state.repo);
    let app = router(state);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Listeners::new();
    let tls_reload = match &config.tls {
        Some(tls) => Some(spawn_tls(&mut tasks, &cli, tls, &app, &stop_rx).await?),
        None => None,
    };
    if !cli.tls_only {
        spawn_plain(&mut tasks, cli.listen, app, stop_rx.clone(), "http").await?;
    }
    tokio::spawn(reload_on_hangup(hup, repo, tls_reload));
    serve_until_stopped(tasks, stop_tx).await
}

/// The HTTPS listeners (`-L`), their graceful stop, and the HTTP→HTTPS redirect listeners.
async fn spawn_tls(
    tasks: &mut Listeners,
    cli: &Cli,
    tls: &crate::config::TlsConfig,
    app: &Router,
    stop_rx: &watch::Receiver<bool>,
) -> anyhow::Result<TlsReload> {
    let rustls_cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.crt, &tls.key)
        .await
        .with_context(|| {
            format!(
                "failed to load TLS certificate `{}` and key `{}`",
                tls.crt.display(),
                tls.key.display()
            )
        })?;
    let tls_app = match &tls.hsts {
        Some(h) => with_hsts(app.clone(), &h.header_value()),
        None => app.clone(),
    };
    let mut handles = Vec::new();
    for addr in &cli.listen_tls {
        let handle = axum_server::Handle::new();
        handles.push(handle.clone());
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_cfg.clone())
            .acceptor(axum_server::accept::NoDelayAcceptor::new());
        let server = axum_server::Server::bind(*addr)
            .acceptor(acceptor)
            .handle(handle);
        let svc = tls_app.clone().into_make_service();
        tasks.spawn(async move { server.serve(svc).await.context("HTTPS listener failed") });
    }
    // The bound addresses (port 0 is resolved here), for the log and the redirect.
    let mut https_port = None;
    for handle in &handles {
        let Some(addr) = handle.listening().await else {
            // The listener failed to bind; its task reports why.
            break;
        };
        tracing::info!(%addr, "listening (https)");
        https_port.get_or_insert(addr.port());
    }
    // Graceful stop of the TLS listeners.
    let mut rx = stop_rx.clone();
    tasks.spawn(async move {
        let _ = rx.wait_for(|s| *s).await;
        for h in handles {
            h.graceful_shutdown(Some(Duration::from_secs(600)));
        }
        Ok(())
    });
    if let Some(redirect) = &tls.redirect {
        let https_port = https_port.unwrap_or(443);
        let addrs = redirect_addrs(&cli.listen_tls, redirect.port, redirect.protocols);
        if addrs.is_empty() && redirect.protocols != Protocols::None {
            tracing::warn!(
                protocols = ?redirect.protocols,
                "no HTTPS listen address (-L) of those protocols: no redirect listener"
            );
        }
        for addr in addrs {
            let app =
                Router::new().fallback(move |req: Request| redirect_to_https(&req, https_port));
            spawn_plain(tasks, addr, app, stop_rx.clone(), "redirect").await?;
        }
    }
    Ok((rustls_cfg, tls.crt.clone(), tls.key.clone()))
}

/// Waits for SIGTERM/SIGINT (then lets in-flight requests finish) or for a listener that
/// ends on its own, which is an error (bind lost, TLS failure).
async fn serve_until_stopped(
    mut tasks: Listeners,
    stop_tx: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = stop => {
            r?;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        }
        Some(r) = tasks.join_next() => {
            r.context("listener task panicked")??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.context("listener task panicked")??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: the trusted packager keys are read again (a key added or revoked takes effect
/// without a restart) and the TLS certificate (renewed by certbot or similar) reloaded.
/// Either failing keeps what was loaded before.
async fn reload_on_hangup(
    mut hup: tokio::signal::unix::Signal,
    repo: std::sync::Arc<crate::repo::Repo>,
    tls: Option<TlsReload>,
) {
    while hup.recv().await.is_some() {
        if repo.keyring().is_some() {
            match repo.reload_keys() {
                Ok(n) => tracing::info!(keys = n, "trusted packager keys reloaded"),
                Err(e) => {
                    tracing::error!(
                        "trusted packager keys reload failed, keeping the old ones: {e:#}"
                    );
                }
            }
        }
        if let Some((cfg, crt, key)) = &tls {
            match cfg.reload_from_pem_file(crt, key).await {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!("TLS certificate reload failed, keeping the old one: {e}");
                }
            }
        }
    }
}

async fn spawn_plain(
    tasks: &mut Listeners,
    addr: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} ({what}); is another server using it?")
    })?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "listening ({what})");
    tasks.spawn(async move {
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .with_context(|| format!("{what} listener on {local} failed"))
    });
    Ok(())
}

/// Where the redirect listens: on the hosts of the HTTPS listeners (so `-L 127.0.0.1:8443`
/// keeps the redirect on loopback too), at the redirect port, for the families `protocols`
/// allows. A wildcard HTTPS address gives the wildcard of each allowed family (`[::]` for
/// both, dual-stack as Linux binds it by default).
fn redirect_addrs(listen_tls: &[SocketAddr], port: u16, protocols: Protocols) -> Vec<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let (v4, v6) = match protocols {
        Protocols::Both => (true, true),
        Protocols::Ipv4 => (true, false),
        Protocols::Ipv6 => (false, true),
        Protocols::None => return Vec::new(),
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut push = |ip: IpAddr| {
        let a = SocketAddr::new(ip, port);
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for l in listen_tls {
        match l.ip() {
            ip if ip.is_unspecified() => push(if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }),
            ip @ IpAddr::V4(_) if v4 => push(ip),
            ip @ IpAddr::V6(_) if v6 => push(ip),
            _ => {}
        }
    }
    // A dual-stack `[::]` already takes IPv4: a second `0.0.0.0` bind would fail.
    if out
        .iter()
        .any(|a| a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    {
        out.retain(|a| a.ip() != IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    out
}

fn redirect_to_https(req: &Request, port: u16) -> std::future::Ready<Response> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(h, _)| h)
        })
        .unwrap_or_default()
        .to_string();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let target = format!("https://{host}{port}{path}");
    std::future::ready(match (host.is_empty(), target.parse::<Uri>()) {
        (false, Ok(_)) => Redirect::permanent(&target).into_response(),
        _ => (StatusCode::BAD_REQUEST, "missing or bad Host header\n").into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(listen: &[&str], p: Protocols) -> Vec<String> {
        let listen: Vec<SocketAddr> = listen.iter().map(|a| a.parse().unwrap()).collect();
        redirect_addrs(&listen, 80, p)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn redirect_listens_where_https_does() {
        assert_eq!(addrs(&["0.0.0.0:8443"], Protocols::Both), ["[::]:80"]);
        assert_eq!(addrs(&["0.0.0.0:8443"], Protocols::Ipv4), ["0.0.0.0:80"]);
        assert_eq!(addrs(&["[::]:8443"], Protocols::Ipv6), ["[::]:80"]);
        assert!(addrs(&["0.0.0.0:8443"], Protocols::None).is_empty());
        assert_eq!(
            addrs(&["127.0.0.1:8443"], Protocols::Ipv4),
            ["127.0.0.1:80"]
        );
        assert_eq!(
            addrs(&["127.0.0.1:8443"], Protocols::Both),
            ["127.0.0.1:80"]
        );
        assert!(addrs(&["127.0.0.1:8443"], Protocols::Ipv6).is_empty());
        assert_eq!(
            addrs(&["127.0.0.1:8443", "[::1]:8443"], Protocols::Both),
            ["127.0.0.1:80", "[::1]:80"]
        );
        assert_eq!(
            addrs(&["127.0.0.1:8443", "[::1]:8443"], Protocols::Ipv6),
            ["[::1]:80"]
        );
        assert_eq!(
            addrs(&["0.0.0.0:8443", "[::]:9443"], Protocols::Both),
            ["[::]:80"]
        );
    }
}
