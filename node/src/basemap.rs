//! The city basemap: a PMTiles file read by the maps, served with HTTP
//! `Range` support ([`serve_file`], used by the node's local API and by the
//! city relay), and the node's cache of it ([`fetch_into`], [`cached_path`]).
//!
//! A phone fetches the **whole** file once from a relay and keeps it in its
//! data directory: fetching tile by tile would tell the relay where the
//! person looks. The web app then reads it from the local node only, so the
//! map works offline. The cache is written to a temporary file, checked (the
//! PMTiles v3 magic, at most [`MAX_BASEMAP_BYTES`]) and renamed into place,
//! so a cut download never replaces a good map.
//!
//! It sits below `api` (which mounts its routes) and imports only
//! `api_error`.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api_error::ApiError;

/// The cached basemap's file name in the node's data directory.
pub const BASEMAP_FILE: &str = "basemap.pmtiles";
/// The largest basemap a node accepts: a metropolitan extract at street
/// level is tens of MB; anything far larger is not a city.
pub const MAX_BASEMAP_BYTES: u64 = 256 * 1024 * 1024;
/// The largest byte range served in one answer (PMTiles readers ask for a
/// header, directories and tiles: kilobytes). A request without `Range`
/// gets the whole file, streamed.
pub const MAX_RANGE_BYTES: u64 = 16 * 1024 * 1024;
/// Chunk size of a streamed whole-file answer.
const CHUNK: usize = 64 * 1024;
/// PMTiles v3 starts with these 7 bytes and the version byte 3.
const MAGIC: &[u8; 7] = b"PMTiles";

/// Why a basemap could not be fetched or cached.
#[derive(Debug, thiserror::Error)]
pub enum BasemapError {
    /// The relay could not be reached or answered an error.
    #[error("the relay did not give the basemap: {0}")]
    Fetch(String),
    /// The answer is not a PMTiles v3 file or is too large.
    #[error("the relay's basemap is not usable: {0}")]
    Invalid(&'static str),
    /// The cache could not be written.
    #[error("cannot write the basemap cache: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether a file starting with `head` is a PMTiles v3 archive.
pub fn is_pmtiles_v3(head: &[u8]) -> bool {
    head.len() >= 8 && &head[..7] == MAGIC && head[7] == 3
}

/// `<data_dir>/basemap.pmtiles`.
pub fn cached_path(data_dir: &Path) -> PathBuf {
    data_dir.join(BASEMAP_FILE)
}

/// One byte range `[start, end]` (inclusive) of a file of `len` bytes,
/// from a `Range` header value. `None`: not satisfiable. Only one range of
/// the `bytes` unit is understood (what map readers send).
pub fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // Suffix: the last `b` bytes.
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

fn not_available() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_basemap",
        "No basemap here yet: the map shows cells only. Fetch the city's basemap from a relay first.",
    )
}

/// Answer a GET for the PMTiles file at `path`: the whole file (streamed)
/// without `Range`, `206 Partial Content` for one satisfiable range (at
/// most [`MAX_RANGE_BYTES`]), `416` otherwise; `404 no_basemap` when there
/// is no file.
pub async fn serve_file(path: &Path, headers: &HeaderMap) -> Response {
    match serve_inner(path, headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve_inner(path: &Path, headers: &HeaderMap) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|_| not_available())?;
    let len = file.metadata().await.map_err(|_| not_available())?.len();
    let base = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.pmtiles"),
        ),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    let Some(range) = headers.get(header::RANGE) else {
        let stream = futures::stream::unfold(file, |mut f| async move {
            let mut buf = vec![0u8; CHUNK];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        });
        let mut res = (base, Body::from_stream(stream)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(res);
    };
    let unsatisfiable = || {
        let mut res = (
            StatusCode::RANGE_NOT_SATISFIABLE,
            base.clone(),
            Body::empty(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        res
    };
    let Some((start, end)) = range.to_str().ok().and_then(|v| parse_range(v, len)) else {
        return Ok(unsatisfiable());
    };
    let n = end - start + 1;
    if n > MAX_RANGE_BYTES {
        return Ok(unsatisfiable());
    }
    let internal = |_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "basemap_unreadable",
            "The basemap file could not be read.",
        )
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(internal)?;
    let mut buf = vec![0u8; usize::try_from(n).map_err(|_| not_available())?];
    file.read_exact(&mut buf).await.map_err(internal)?;
    let mut res = (StatusCode::PARTIAL_CONTENT, base, buf).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(res)
}

/// Fetch the whole basemap at `url` (a relay's `/basemap.pmtiles`) into
/// `<data_dir>/basemap.pmtiles`, replacing the cached one only once the new
/// file is complete and looks like PMTiles v3. Returns its size in bytes.
pub async fn fetch_into(data_dir: &Path, url: &str) -> Result<u64, BasemapError> {
    let res = reqwest::get(url)
        .await
        .map_err(|e| BasemapError::Fetch(e.without_url().to_string()))?;
    if !res.status().is_success() {
        return Err(BasemapError::Fetch(format!("HTTP {}", res.status())));
    }
    if res.content_length().is_some_and(|n| n > MAX_BASEMAP_BYTES) {
        return Err(BasemapError::Invalid("larger than 256 MB"));
    }
    let tmp = data_dir.join(format!("{BASEMAP_FILE}.new"));
    let _ = tokio::fs::remove_file(&tmp).await;
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await?;
    let mut body = res.bytes_stream();
    let mut total: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(8);
    let result = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BasemapError::Fetch(e.without_url().to_string()))?;
            total += chunk.len() as u64;
            if total > MAX_BASEMAP_BYTES {
                return Err(BasemapError::Invalid("larger than 256 MB"));
            }
            if head.len() < 8 {
                let take = (8 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            out.write_all(&chunk).await?;
        }
        if !is_pmtiles_v3(&head) {
            return Err(BasemapError::Invalid("not a PMTiles version 3 file"));
        }
        out.sync_all().await?;
        Ok(())
    }
    .await;
    drop(out);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, cached_path(data_dir)).await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-4", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=-0", 1000), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
