//! A stand-in for the few GitLab REST API endpoints `ci/gitlab-downstream` calls, served
//! on 127.0.0.1 by a thread of the test: repository files (raw), tags, commits and
//! pipelines of one project, with the PRIVATE-TOKEN check. It answers the way GitLab's
//! API documentation describes (status codes, JSON bodies), and records every request
//! so tests can see what a real GitLab would have received.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The query string, percent-decoded.
    pub query: String,
    pub body: String,
}

/// The state of the downstream project.
#[derive(Debug, Default)]
pub struct Project {
    /// `group/name`.
    pub path: String,
    /// Branch → file path → content.
    pub files: BTreeMap<String, BTreeMap<String, String>>,
    pub tags: Vec<String>,
    /// Plain downloads outside the API (release tarballs), by path, served without
    /// a token.
    pub downloads: BTreeMap<String, Vec<u8>>,
    pub token: String,
    pub requests: Vec<Request>,
}

impl Project {
    /// A project `path` whose `main` branch holds `files` (name, content), with tags `tags`,
    /// answering to `token`.
    pub fn on_main(
        path: &str,
        token: &str,
        files: &[(&str, impl AsRef<str>)],
        tags: &[&str],
    ) -> Self {
        let main = files
            .iter()
            .map(|(n, t)| ((*n).to_string(), t.as_ref().to_string()))
            .collect();
        Project {
            path: path.to_string(),
            files: [("main".to_string(), main)].into_iter().collect(),
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            token: token.to_string(),
            ..Project::default()
        }
    }
}

/// A running stand-in; the thread ends with the test process.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The API root, `<base>/api/v4` (CI_API_V4_URL).
    pub url: String,
    pub state: Arc<Mutex<Project>>,
}

impl Server {
    /// Starts serving `project` on 127.0.0.1 (a free port).
    pub fn start(project: Project) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{base}/api/v4");
        let state = Arc::new(Mutex::new(project));
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    // A broken connection only fails the request being made.
                    let _ = serve(conn, &s);
                });
            }
        });
        Server { base, url, state }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The content of `file` on `branch` now.
    pub fn file(&self, branch: &str, file: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .files
            .get(branch)?
            .get(file)
            .cloned()
    }
}

/// `%2F` → `/` and so on.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(conn: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One HTTP request as the scripts send it.
struct HttpRequest {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Reads the request line, the headers (answering `Expect: 100-continue`) and the body.
fn read_request(conn: &mut TcpStream) -> std::io::Result<HttpRequest> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(HttpRequest {
        method,
        target,
        headers,
        body,
    })
}

fn serve(mut conn: TcpStream, state: &Mutex<Project>) -> std::io::Result<()> {
    let req = read_request(&mut conn)?;
    let (raw_path, raw_query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    // The project id and file path are single encoded segments: split before decoding.
    let segs: Vec<String> = raw_path.split('/').map(decode).collect();
    let query = decode(raw_query);
    let mut p = state.lock().unwrap();
    p.requests.push(Request {
        method: req.method.clone(),
        path: segs.join("/"),
        query: query.clone(),
        body: req.body.clone(),
    });
    if req.method == "GET"
        && let Some(data) = p.downloads.get(raw_path)
    {
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            data.len()
        )?;
        return conn.write_all(data);
    }
    if req.headers.get("private-token") != Some(&p.token) {
        return respond(&mut conn, 401, r#"{"message":"401 Unauthorized"}"#);
    }
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    route(&mut conn, &mut p, &req, &segs, &query)
}

/// The API endpoints the scripts call, on the recorded project.
fn route(
    conn: &mut TcpStream,
    p: &mut Project,
    req: &HttpRequest,
    segs: &[&str],
    query: &str,
) -> std::io::Result<()> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    match (req.method.as_str(), segs) {
        (
            "GET",
            [
                "",
                "api",
                "v4",
                "projects",
                proj,
                "repository",
                "files",
                file,
                "raw",
            ],
        ) if *proj == p.path => {
            let text = p
                .files
                .get(&param("ref"))
                .and_then(|f| f.get(*file))
                .cloned();
            match text {
                Some(t) => {
                    write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{t}",
                        t.len()
                    )
                }
                None => respond(conn, 404, r#"{"message":"404 File Not Found"}"#),
            }
        }
        ("GET", ["", "api", "v4", "projects", proj, "repository", "tags", tag])
            if *proj == p.path =>
        {
            if p.tags.iter().any(|t| t == tag) {
                respond(conn, 200, &format!(r#"{{"name":"{tag}"}}"#))
            } else {
                respond(conn, 404, r#"{"message":"404 Tag Not Found"}"#)
            }
        }
        ("POST", ["", "api", "v4", "projects", proj, "pipeline"]) if *proj == p.path => respond(
            conn,
            201,
            &format!(
                r#"{{"id":7,"ref":"{}","web_url":"https://gitlab.example.com/{}/-/pipelines/7"}}"#,
                param("ref"),
                p.path
            ),
        ),
        ("POST", ["", "api", "v4", "projects", proj, "repository", "commits"])
            if *proj == p.path =>
        {
            commit(conn, p, &req.body)
        }
        _ => respond(conn, 404, r#"{"message":"404 Project Not Found"}"#),
    }
}

/// `POST …/repository/commits`: applies `update` actions to files that exist on the branch.
fn commit(conn: &mut TcpStream, p: &mut Project, body: &str) -> std::io::Result<()> {
    let Ok(req) = serde_json::from_str::<serde_json::Value>(body) else {
        return respond(conn, 400, r#"{"error":"body is not JSON"}"#);
    };
    let branch = req["branch"].as_str().unwrap_or_default().to_string();
    if !p.files.contains_key(&branch) {
        return respond(
            conn,
            400,
            r#"{"message":"You can only create or edit files when you are on a branch"}"#,
        );
    }
    for a in req["actions"].as_array().cloned().unwrap_or_default() {
        let path = a["file_path"].as_str().unwrap_or_default().to_string();
        let exists = p.files[&branch].contains_key(&path);
        if a["action"] != "update" || !exists {
            return respond(
                conn,
                400,
                r#"{"message":"A file with this name doesn't exist"}"#,
            );
        }
        let content = a["content"].as_str().unwrap_or_default().to_string();
        p.files.get_mut(&branch).unwrap().insert(path, content);
    }
    respond(
        conn,
        201,
        r#"{"id":"0123456789abcdef","short_id":"01234567"}"#,
    )
}
