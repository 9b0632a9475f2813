//! `group_by=stage` in the statistics, on PostgreSQL and SQLite: the groups are the requests'
//! current stages in the read model, each counting exactly the requests the request list shows
//! in that stage; `stage=` filters like any other dimension; an unknown dimension stays 400.

use std::collections::BTreeMap;

use chrono::Duration;
use projections::Projections;
use projections::query::{Dim, Filter, ListQuery, Period, RequestList, StatsQuery};

use crate::projections::{apply_all, base, close, get, open_db, random_log, serve};

/// Every request's stage, tallied from the request list (not from the statistics).
async fn stages_from_list(p: &Projections) -> BTreeMap<String, i64> {
    let mut tally = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = p
            .requests(&ListQuery {
                list: RequestList::All,
                filter: Filter::default(),
                since_position: None,
                limit: 1000,
                cursor: cursor.take(),
                now: base(),
            })
            .await
            .expect("list");
        for s in page.items {
            *tally.entry(s.stage).or_insert(0) += 1;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return tally,
        }
    }
}

async fn grouped_by_stage(pg: bool) {
    let (p, g) = open_db(pg).await;
    let (log, _) = random_log(400, 0x5749_6E67);
    apply_all(&p, &log.commits, 200).await;
    let now = base() + Duration::days(40);
    let expected = stages_from_list(&p).await;
    assert!(
        expected.len() >= 3,
        "the log reaches several stages: {expected:?}"
    );

    let rows = p
        .stats(&StatsQuery {
            period: Period::Month,
            group_by: vec![Dim::Stage],
            filter: Filter::default(),
            now,
        })
        .await
        .expect("stats");
    let mut got = BTreeMap::new();
    for r in &rows {
        let stage = r.dims["stage"].clone().expect("stage set");
        *got.entry(stage).or_insert(0) += r.counts.received;
    }
    assert_eq!(got, expected);

    let (_server, url) = serve(&p).await;
    let now_q = now.to_rfc3339().replace('+', "%2B");
    let (s, body) = get(
        &url,
        &format!("/api/v1/stats?period=month&group_by=stage&now={now_q}"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let mut http = BTreeMap::new();
    for it in body["items"].as_array().expect("items") {
        let stage = it["dims"]["stage"].as_str().expect("stage").to_owned();
        *http.entry(stage).or_insert(0) += it["counts"]["received"].as_i64().expect("received");
    }
    assert_eq!(http, expected);

    // The filter: only one stage's requests.
    let (stage, n) = expected.iter().next().expect("a stage");
    let (s, body) = get(
        &url,
        &format!("/api/v1/stats?period=month&stage={stage}&now={now_q}"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let total: i64 = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|it| it["counts"]["received"].as_i64().expect("received"))
        .sum();
    assert_eq!(total, *n);

    let (s, body) = get(&url, "/api/v1/stats?period=month&group_by=phase").await;
    assert_eq!(s, 400);
    assert_eq!(body["field"], "group_by", "{body}");
    close(g).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    tokio::time::timeout(std::time::Duration::from_secs(240), grouped_by_stage(true))
        .await
        .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    tokio::time::timeout(std::time::Duration::from_secs(240), grouped_by_stage(false))
        .await
        .expect("test timed out");
}
