//! `web`: a site crawled from a start page or a sitemap. Breadth first, to `max_depth` links from
//! the start and at most `max_pages` pages; same host by default; robots.txt honoured (RFC 9309:
//! a missing file allows everything, an unreachable one nothing), with its crawl delay and its
//! sitemaps; `<meta name="robots">` noindex / nofollow honoured. An item's version is the hash of
//! its content, so a page that did not change is not processed again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error};
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Connector, Listed, Listing, Patterns, net};

const ROBOTS_AGENT: &str = "LoreBot";
/// A site's crawl delay is honoured up to this.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(5);

pub struct Web {
    start: Url,
    max_depth: u32,
    max_pages: usize,
    same_site: bool,
    use_sitemaps: bool,
    patterns: Patterns,
    /// Headers sent to the start page's host only (from the sealed credentials).
    headers: reqwest::header::HeaderMap,
    http: reqwest::Client,
    /// The client for requests that carry `headers`: it never follows a redirect to another host,
    /// so the credentials cannot follow it there.
    credentialed: reqwest::Client,
    max_bytes: u64,
    policy: net::Policy,
    /// What the crawl downloaded, by key, until the sync asks for it: in staging files, never
    /// held in memory (a crawl may gather thousands of pages).
    bodies: Mutex<HashMap<String, tempfile::TempPath>>,
    staging: std::path::PathBuf,
}

/// A client held to the outbound policy that stops at a redirect to another host (the answer is
/// then the redirect itself, counted as a failed page).
fn same_host_client(policy: &net::Policy) -> Result<reqwest::Client, Error> {
    let checked = policy.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        let first_host = attempt.previous().first().and_then(|u| u.host_str().map(str::to_string));
        if attempt.previous().len() >= lore_core::outbound::MAX_REDIRECTS {
            attempt.error(Error::new(Code::SourceUnreachable, "too many redirects"))
        } else if attempt.url().host_str().map(str::to_string) != first_host {
            attempt.stop()
        } else if let Err(e) = checked.check_url(attempt.url().as_str()) {
            attempt.error(e)
        } else {
            attempt.follow()
        }
    });
    policy
        .client_builder()
        .redirect(redirects)
        .user_agent(net::USER_AGENT)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::internal(format!("HTTP client: {e}")))
}

fn number(config: &Value, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, Error> {
    match config.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(v) => v.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
            Error::new(
                Code::InvalidSourceConfig,
                format!("config.{key} must be a whole number from {} to {}", range.start(), range.end()),
            )
        }),
    }
}

fn flag(config: &Value, key: &str, default: bool) -> Result<bool, Error> {
    match config.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| Error::new(Code::InvalidSourceConfig, format!("config.{key} must be true or false"))),
    }
}

/// A page's identity: no fragment (the same page), no default port.
fn normalise(mut url: Url) -> Url {
    url.set_fragment(None);
    url
}

impl Web {
    pub fn open(
        config: &Value, credentials: Option<&Value>, max_bytes: u64, policy: &net::Policy, staging: &Path,
    ) -> Result<Self, Error> {
        let raw = config["url"]
            .as_str()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| Error::new(Code::InvalidSourceConfig, "web needs config.url (a page or a sitemap)"))?;
        let start = Url::parse(raw.trim())
            .map_err(|e| Error::new(Code::InvalidSourceConfig, format!("config.url {raw:?}: {e}")))?;
        net::check_literal(&start, policy)?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(map) = credentials.and_then(|c| c.get("headers")) {
            let map = map.as_object().ok_or_else(|| {
                Error::new(Code::InvalidSourceConfig, "credentials.headers must be an object of header names to values")
            })?;
            for (name, value) in map {
                let bad = || Error::new(Code::InvalidSourceConfig, format!("credentials.headers.{name} is not valid"));
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
                let value = value.as_str().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
                headers.insert(name, value);
            }
        }
        Ok(Self {
            start: normalise(start),
            max_depth: number(config, "max_depth", 2, 0..=10)? as u32,
            max_pages: number(config, "max_pages", 100, 1..=10_000)? as usize,
            same_site: flag(config, "same_site", true)?,
            use_sitemaps: flag(config, "use_sitemaps", true)?,
            patterns: Patterns::from_config(config)?,
            headers,
            http: net::client(policy, Duration::from_secs(30))?,
            credentialed: same_host_client(policy)?,
            max_bytes,
            policy: policy.clone(),
            bodies: Mutex::new(HashMap::new()),
            staging: staging.to_path_buf(),
        })
    }

    fn in_scope(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https")
            && (!self.same_site || url.host_str() == self.start.host_str())
            && net::check_literal(url, &self.policy).is_ok()
    }

    async fn get(&self, url: &Url) -> Result<reqwest::Response, Error> {
        let mut request = self.http.get(url.clone());
        if url.host_str() == self.start.host_str() && !self.headers.is_empty() {
            request = self.credentialed.get(url.clone());
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
        }
        request.send().await.map_err(|e| net::describe(url.as_str(), &e))
    }

    /// The site's robots.txt rules; `None` allows everything.
    async fn robots(&self, url: &Url) -> Result<Option<texting_robots::Robot>, Error> {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        let response = self.get(&robots_url).await;
        match response {
            Ok(r) if r.status().is_success() => {
                let body = net::read_limited(robots_url.as_str(), r, 512 * 1024).await?;
                Ok(texting_robots::Robot::new(ROBOTS_AGENT, &body).ok())
            }
            // RFC 9309: "unavailable" (4xx) allows everything; "unreachable" (5xx, network) nothing.
            Ok(r) if r.status().is_client_error() => Ok(None),
            Ok(r) => Err(Error::new(
                Code::SourceUnreachable,
                format!("{robots_url} answered {}; a site whose robots.txt is unreachable is not crawled", r.status()),
            )),
            Err(e) => Err(e),
        }
    }
}

enum Page {
    Html { links: Vec<Url>, index: bool },
    Sitemap(Vec<Url>),
    File,
}

/// What a fetched body is, and the links it leads to.
fn classify(url: &Url, content_type: &str, body: &[u8]) -> Page {
    let looks_xml = content_type.contains("xml") || url.path().ends_with(".xml");
    if looks_xml && let Some(locations) = sitemap_locations(body) {
        return Page::Sitemap(locations.iter().filter_map(|l| url.join(l.trim()).ok()).collect());
    }
    if !content_type.contains("html") {
        return Page::File;
    }
    let html = scraper::Html::parse_document(&String::from_utf8_lossy(body));
    let mut follow = true;
    let mut index = true;
    if let Ok(meta) = scraper::Selector::parse("meta[name]") {
        for m in html.select(&meta) {
            let el = m.value();
            if el.attr("name").is_some_and(|n| n.eq_ignore_ascii_case("robots")) {
                let content = el.attr("content").unwrap_or_default().to_ascii_lowercase();
                follow &= !(content.contains("nofollow") || content.contains("none"));
                index &= !(content.contains("noindex") || content.contains("none"));
            }
        }
    }
    let base = scraper::Selector::parse("base[href]")
        .ok()
        .and_then(|s| html.select(&s).next().and_then(|b| b.value().attr("href")).and_then(|h| url.join(h).ok()))
        .unwrap_or_else(|| url.clone());
    let mut links = Vec::new();
    if follow && let Ok(anchors) = scraper::Selector::parse("a[href]") {
        for a in html.select(&anchors) {
            let el = a.value();
            if el.attr("rel").is_some_and(|r| r.split_whitespace().any(|r| r.eq_ignore_ascii_case("nofollow"))) {
                continue;
            }
            if let Some(link) = el.attr("href").and_then(|h| base.join(h.trim()).ok()) {
                links.push(normalise(link));
            }
        }
    }
    Page::Html { links, index }
}

/// The `<loc>`s of a sitemap (`<urlset>`) or a sitemap index (`<sitemapindex>`); `None` when the
/// document is neither.
fn sitemap_locations(body: &[u8]) -> Option<Vec<String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut root: Option<String> = None;
    let mut in_loc = false;
    let mut locations = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let qualified = e.name();
                let name = qualified.as_ref().rsplit(':').next().unwrap_or_default().to_string();
                if root.is_none() {
                    if name != "urlset" && name != "sitemapindex" {
                        return None;
                    }
                    root = Some(name.clone());
                }
                in_loc = name == "loc";
            }
            Ok(Event::Text(t)) if in_loc => locations.push(t.xml10_content().into_owned()),
            Ok(Event::CData(t)) if in_loc => locations.push(AsRef::<str>::as_ref(&t).to_string()),
            Ok(Event::End(_)) => in_loc = false,
            Ok(Event::Eof) => break,
            Err(_) => return root.map(|_| locations),
            _ => {}
        }
        buf.clear();
    }
    root.map(|_| locations)
}

/// A file name for the page, with the extension its content type implies, so the parser knows it.
fn filename(url: &Url, content_type: &str) -> String {
    let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy().into_owned();
    let mut name = if decoded.trim().is_empty() { "index".to_string() } else { decoded };
    let extension = if content_type.contains("html") {
        Some(("html", &["html", "htm", "xhtml"][..]))
    } else if content_type.contains("markdown") {
        Some(("md", &["md", "markdown"][..]))
    } else if content_type.contains("pdf") {
        Some(("pdf", &["pdf"][..]))
    } else if content_type.starts_with("text/plain") {
        Some(("txt", &["txt", "text", "md", "csv", "log"][..]))
    } else {
        None
    };
    if let Some((add, known)) = extension {
        let has = name.rsplit_once('.').is_some_and(|(_, e)| known.iter().any(|k| e.eq_ignore_ascii_case(k)));
        if !has {
            name = format!("{name}.{add}");
        }
    }
    name.chars().take(200).collect()
}

#[async_trait]
impl Connector for Web {
    async fn list(&self) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        let mut queue: VecDeque<(Url, u32)> = VecDeque::from([(self.start.clone(), 0)]);
        let mut seen: HashSet<String> = HashSet::from([self.start.to_string()]);
        // Per origin: its rules (`None` allows everything), or `Err` when robots.txt was
        // unreachable, so each of its pages fails without asking again.
        let mut robots: HashMap<String, Result<Option<texting_robots::Robot>, ()>> = HashMap::new();
        let mut fetched = 0usize;
        let mut bodies = HashMap::new();
        while let Some((url, depth)) = queue.pop_front() {
            if listing.items.len() >= self.max_pages || fetched >= self.max_pages * 2 {
                break;
            }
            let origin = url.origin().ascii_serialization();
            if !robots.contains_key(&origin) {
                let rules = match self.robots(&url).await {
                    Ok(rules) => rules,
                    Err(e) if url == self.start => return Err(e),
                    Err(e) => {
                        listing.failed.push((url.to_string(), e));
                        robots.insert(origin, Err(()));
                        continue;
                    }
                };
                if self.use_sitemaps && url == self.start {
                    for sitemap in rules.iter().flat_map(|r| r.sitemaps.iter()) {
                        if let Ok(s) = Url::parse(sitemap).map(normalise)
                            && self.in_scope(&s)
                            && seen.insert(s.to_string())
                        {
                            queue.push_back((s, depth));
                        }
                    }
                }
                robots.insert(origin.clone(), Ok(rules));
            }
            let rules = match robots.get(&origin) {
                Some(Ok(rules)) => rules.as_ref(),
                _ => {
                    let e = Error::new(Code::SourceUnreachable, format!("robots.txt of {origin} is unreachable"));
                    listing.failed.push((url.to_string(), e));
                    continue;
                }
            };
            if rules.is_some_and(|r| !r.allowed(url.as_str())) {
                if url == self.start {
                    return Err(Error::new(
                        Code::SourceUnreachable,
                        format!("robots.txt does not allow crawling {url}"),
                    ));
                }
                continue;
            }
            if fetched > 0
                && let Some(delay) = rules.and_then(|r| r.delay)
            {
                tokio::time::sleep(Duration::from_secs_f32(delay.max(0.0)).min(MAX_CRAWL_DELAY)).await;
            }
            fetched += 1;
            let response = match self.get(&url).await {
                Ok(r) => r,
                Err(e) if url == self.start => return Err(e),
                Err(e) => {
                    listing.failed.push((url.to_string(), e));
                    continue;
                }
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
                if url == self.start {
                    return Err(Error::new(Code::SourceUnreachable, format!("{url} answered {status}")));
                }
                continue; // gone: if it was known, the sync removes it
            }
            if !status.is_success() {
                let e = Error::new(Code::SourceUnreachable, format!("{url} answered {status}"));
                if url == self.start {
                    return Err(e);
                }
                listing.failed.push((url.to_string(), e));
                continue;
            }
            // Where the redirects ended is the page's identity.
            let landed = normalise(response.url().clone());
            if landed != url && (!self.in_scope(&landed) || !seen.insert(landed.to_string())) {
                continue;
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let body = match net::read_limited(landed.as_str(), response, self.max_bytes).await {
                Ok(b) => b,
                Err(e) => {
                    listing.failed.push((landed.to_string(), e));
                    continue;
                }
            };
            let (links, index, link_depth) = match classify(&landed, &content_type, &body) {
                // A sitemap lists pages: they count as found where the sitemap was.
                Page::Sitemap(locations) => (locations, false, depth),
                Page::Html { links, index } => (links, index, depth + 1),
                Page::File => (Vec::new(), true, depth + 1),
            };
            if link_depth <= self.max_depth {
                for link in links {
                    if self.in_scope(&link) && seen.insert(link.to_string()) {
                        queue.push_back((link, link_depth));
                    }
                }
            }
            if index && self.patterns.wants(landed.path()) {
                let key = landed.to_string();
                let version = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
                let mut item = Listed::new(key.clone(), version);
                item.filename = filename(&landed, &content_type);
                listing.items.push(item);
                bodies.insert(key, self.stage(&body).await?);
            }
        }
        *self.bodies.lock().map_err(|_| Error::internal("crawl cache poisoned"))? = bodies;
        Ok(listing)
    }

    async fn fetch(&self, item: &Listed, dest: &Path) -> Result<(), Error> {
        let staged = self
            .bodies
            .lock()
            .map_err(|_| Error::internal("crawl cache poisoned"))?
            .remove(&item.key)
            .ok_or_else(|| Error::internal(format!("{} was not crawled", item.key)))?;
        tokio::fs::copy(&staged, dest).await.map_err(|e| storage_error(&item.key, e))?;
        Ok(())
    }
}

fn storage_error(what: &str, e: std::io::Error) -> Error {
    Error::from_storage(&e).unwrap_or_else(|| Error::internal(format!("staging {what}: {e}")))
}

impl Web {
    /// Keeps a crawled page in a staging file until the sync fetches it.
    async fn stage(&self, body: &[u8]) -> Result<tempfile::TempPath, Error> {
        let file = tempfile::Builder::new()
            .prefix("crawl-")
            .tempfile_in(&self.staging)
            .map_err(|e| storage_error("a crawled page", e))?;
        let path = file.into_temp_path();
        tokio::fs::write(&path, body).await.map_err(|e| storage_error("a crawled page", e))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sitemaps_and_indexes_give_their_locations_other_xml_does_not() {
        let urlset = br#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc>https://a.example/one</loc><lastmod>2026-01-01</lastmod></url>
            <url><loc> https://a.example/%E4%B8%AD </loc></url></urlset>"#;
        assert_eq!(
            sitemap_locations(urlset).expect("sitemap"),
            vec!["https://a.example/one", " https://a.example/%E4%B8%AD "]
        );
        let index = br#"<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>"#;
        assert_eq!(sitemap_locations(index).expect("index"), vec!["https://a.example/s1.xml"]);
        assert!(sitemap_locations(b"<rss><channel><link>x</link></channel></rss>").is_none());
    }

    #[test]
    fn links_resolve_against_the_page_and_robots_meta_is_honoured() {
        let url = Url::parse("https://a.example/docs/intro.html").expect("url");
        let html = br#"<html><head><title>t</title></head><body>
            <a href="setup.html#part">setup</a> <a href="/about">about</a>
            <a href="https://b.example/x">elsewhere</a> <a href="mailto:x@a.example">mail</a>
            <a rel="nofollow" href="/login">login</a></body></html>"#;
        let Page::Html { links, index } = classify(&url, "text/html; charset=utf-8", html) else { panic!("html") };
        assert!(index);
        let links: Vec<String> = links.iter().map(Url::to_string).collect();
        assert!(links.contains(&"https://a.example/docs/setup.html".to_string()), "{links:?}");
        assert!(links.contains(&"https://a.example/about".to_string()));
        assert!(!links.iter().any(|l| l.ends_with("/login")));
        let hidden = br#"<html><head><meta name="robots" content="noindex, nofollow"></head><body><a href="/x">x</a></body></html>"#;
        let Page::Html { links, index } = classify(&url, "text/html", hidden) else { panic!("html") };
        assert!(!index && links.is_empty());
    }

    #[test]
    fn file_names_carry_the_extension_of_their_content() {
        let name = |u: &str, ct: &str| filename(&Url::parse(u).expect("url"), ct);
        assert_eq!(name("https://a.example/", "text/html"), "index.html");
        assert_eq!(name("https://a.example/docs/guide", "text/html; charset=utf-8"), "guide.html");
        assert_eq!(name("https://a.example/%E6%8C%87%E5%8D%97.htm", "text/html"), "指南.htm");
        assert_eq!(name("https://a.example/paper", "application/pdf"), "paper.pdf");
        assert_eq!(name("https://a.example/notes.md", "text/plain"), "notes.md");
    }
}
