//! The request operations of GeoReport v2: create (`POST requests.json`), one request
//! (`GET requests/{id}.json`) and the list (`GET requests.json`), public but without contact
//! data or confidential requests.

use super::*;
use engine_core::request::PublicText;

/// The caller behind `api_key` (or a bearer token, or in dev mode the actor header); it must
/// act in the intake-system role.
fn submitter(
    app: &AppState,
    params: &Params,
    headers: &HeaderMap,
) -> Result<schemas::Actor, Open311Error> {
    let forbidden = |_| {
        Open311Error::new(
            StatusCode::FORBIDDEN,
            "api_key missing or invalid -- cannot create the request",
        )
    };
    let bearer =
        crate::auth::bearer_token(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
            .map_err(forbidden)?;
    let key = params.get("api_key").or(bearer);
    let dev = headers.get(DEV_ACTOR_HEADER).and_then(|v| v.to_str().ok());
    let actor = app.auth.authenticate(key, dev).map_err(|_| {
        Open311Error::new(
            StatusCode::FORBIDDEN,
            "api_key missing or invalid -- cannot create the request",
        )
    })?;
    if actor.role != Role::IntakeSystem {
        return Err(Open311Error::new(
            StatusCode::FORBIDDEN,
            format!(
                "the api_key's role `{}` may not create requests (intake_system may)",
                actor.role.as_str()
            ),
        ));
    }
    Ok(actor)
}

/// `POST /open311/v2/requests.json`: a new request (form-encoded, or JSON).
pub async fn create_request(
    State(app): State<AppState>,
    Extension(state): Extension<Open311State>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Open311Error> {
    let mut params = query_params(query.as_deref())?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if !body.iter().all(u8::is_ascii_whitespace) {
        params.extend(if is_json {
            Params::from_json(&body)?
        } else {
            Params::from_form(&body)?
        });
    }
    check_jurisdiction(&state, &params)?;
    let actor = submitter(&app, &params, &headers)?;
    if let Some(limiter) = &state.limiter
        && let crate::ratelimit::Decision::Refuse(wait) =
            limiter.check(&format!("actor:{}", actor.id), std::time::Instant::now())
    {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = Open311Error::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests from this api_key; retry in {seconds} s"),
        )
        .into_response();
        if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let create = CreateRequest::parse(&params)?;
    let policy = app.commands.policy();
    let item = policy
        .catalogue()
        .item(&create.service_code)
        .ok_or_else(|| {
            Open311Error::not_found(format!("no service_code `{}`", create.service_code))
        })?;
    // An explicit grid attribute wins; else the engine looks up lat/long in its grid
    // polygons; else the configured default grid.
    let grid = match create.grid() {
        Some(grid) => Some(grid),
        None if create.lat_long.is_some() => None,
        None => Some(state.config.default_grid.as_deref().ok_or_else(|| {
            Open311Error::bad_request(format!(
                "attribute[{GRID_ATTRIBUTE}] or lat and long are required (see the service definition)"
            ))
        })?),
    };
    let location = grid
        .map(|grid| {
            state
                .grids
                .get(grid)
                .map(|(path, _)| path.clone())
                .or_else(|| policy.directory().grids().find(|path| path.grid == grid))
                .ok_or_else(|| {
                    Open311Error::bad_request(format!(
                        "attribute[{GRID_ATTRIBUTE}]: unknown grid `{grid}`"
                    ))
                })
        })
        .transpose()?;
    let now = app.commands.clock().now();
    let day = now.format("%Y-%m-%d").to_string();
    let external_id = create.external_id(&params, &actor.id, &day);
    let document = create.intake(external_id, location, item)?;
    // The file a media_url names is fetched and checked before anything is recorded.
    let media = match (&create.media_url, app.media.config.fetch_media_urls) {
        (Some(url), true) => Some(
            crate::media::fetch::intake_upload(&app.media, url)
                .await
                .map_err(media_error)?,
        ),
        _ => None,
    };
    let service = app.commands.clone();
    let media_state = app.media.clone();
    // Run to completion even if the client goes away: never half-applied (a retry of an
    // intake whose file failed to store finds the request and stores the file).
    let outcome = tokio::spawn(async move {
        let outcome = service.intake(document, actor.clone()).await?;
        if let Some(upload) = media {
            crate::media::attach(
                &service,
                &media_state.store,
                &media_state.config,
                actor,
                outcome.request_id,
                upload,
                None,
            )
            .await
            .map_err(|e| match e {
                crate::media::attach::AttachError::Command(e) => e,
                other => CommandError::Unavailable(other.to_string()),
            })?;
        }
        Ok::<_, CommandError>(outcome)
    })
    .await
    .map_err(|e| CommandError::Internal(e.to_string()))??;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = vec![CreatedRequest {
        service_request_id: outcome.request_id.to_string(),
        service_notice: Some(limits_notice(&app, item, &state)),
        account_id: create.account_id.clone(),
    }];
    Ok((status, Json(body)).into_response())
}

/// The Open311 answer to a `media_url` that could not be taken: 413 / 415 for a file over
/// the limit or of a type not accepted, 400 for a URL that could not be fetched.
fn media_error(error: crate::media::fetch::FetchError) -> Open311Error {
    use crate::media::fetch::FetchError;
    match error {
        FetchError::Refused(refusal) => {
            let status = crate::media::http::refusal(refusal.clone()).status;
            Open311Error::new(status, format!("media_url: {refusal}"))
        }
        other => Open311Error::bad_request(other.to_string()),
    }
}

/// A request created over Open311, as the spec shows it; `None` for any other request.
async fn service_request(
    app: &AppState,
    state: &Open311State,
    id: RequestId,
) -> Result<Option<ServiceRequest>, Open311Error> {
    let history = match app.commands.history(id).await {
        Ok(history) => history,
        Err(CommandError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let Some(received) = history.iter().find_map(|e| match &e.event {
        Event::RequestReceived(r) => Some(r),
        _ => None,
    }) else {
        return Ok(None);
    };
    // Public reads show only what was created over Open311, and never a request whose
    // resident asked for confidential handling (another intake system may submit one on the
    // online channel with an `o311:` ticket).
    if received.channel != Channel::Online
        || !received.external_id.starts_with(EXTERNAL_ID_PREFIX)
        || received.confidential
    {
        return Ok(None);
    }
    let request = Request::from_history(id, &history);
    let catalogue = app.commands.policy().catalogue();
    let requested_code = received
        .external_id
        .strip_prefix(EXTERNAL_ID_PREFIX)
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(code, _)| code.to_string());
    let code = request
        .classification()
        .map(|c| c.catalogue_item.clone())
        .or(requested_code);
    let item = code.as_deref().and_then(|c| catalogue.item(c));
    let recorded = Recorded::read(&received.text);
    // The place intake recorded: its point is WGS-84 whatever datum was sent. Not moderated:
    // it is where the matter is, never the resident's address (docs/open311.md, Moderation).
    // The text's marked line answers for logs written before places were recorded.
    let place = received.place.as_ref();
    let point = place.and_then(|p| p.point.as_ref());
    let agency = request
        .lead_department()
        .map(str::to_string)
        .or_else(|| match request.handling() {
            Some(engine_core::request::Handling::Proxy { department }) => Some(department.clone()),
            _ => None,
        })
        .or_else(|| {
            request
                .classification()
                .and_then(|c| c.departments.first().cloned())
        })
        .map(|code| state.departments.get(&code).cloned().unwrap_or(code));
    let expected = request
        .deadline_in_force(DeadlineKind::Completion)
        .or_else(|| request.deadlines().map(|d| d.completion_due_at));
    let received_at = request
        .intake()
        .map(|i| i.received_at)
        .unwrap_or(history[0].recorded_at);
    let updated_at = history.last().map_or(received_at, |e| e.recorded_at);
    Ok(Some(ServiceRequest {
        service_request_id: id.to_string(),
        status: status::status(request.stage()).into(),
        status_notes: Some(status::notes(&request)),
        service_name: item.map(|i| i.name.clone()),
        service_code: code,
        // Moderation decides what is published of the resident's words; the log keeps them.
        description: match request.public_text() {
            PublicText::Original => Some(recorded.description),
            PublicText::Redacted(text) => Some(text.to_string()),
            PublicText::Hidden => None,
        },
        agency_responsible: agency,
        service_notice: item.map(|i| limits_notice(app, i, state)),
        requested_datetime: state.datetime(received_at),
        updated_datetime: state.datetime(updated_at),
        expected_datetime: expected.map(|t| state.datetime(t)),
        address: recorded
            .address
            .or_else(|| place.and_then(|p| p.address.clone())),
        address_id: recorded.address_id,
        zipcode: None,
        lat: point.map(|p| p.lat).or(recorded.lat),
        long: point.map(|p| p.lon).or(recorded.long),
        media_url: received
            .attachments
            .first()
            .filter(|_| request.public_attachments())
            .map(|a| a.uri.clone()),
    }))
}

fn parse_id(raw: &str) -> Result<RequestId, Open311Error> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| Open311Error::bad_request(format!("service_request_id `{raw}` is not a UUID")))
}

/// `GET /open311/v2/requests/{service_request_id}.json`.
pub async fn get_request(
    State(app): State<AppState>,
    Extension(state): Extension<Open311State>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ServiceRequest>>, Open311Error> {
    let id = parse_id(strip_json(&file)?)?;
    let params = query_params(query.as_deref())?;
    check_jurisdiction(&state, &params)?;
    match service_request(&app, &state, id).await? {
        Some(request) => Ok(Json(vec![request])),
        None => Err(Open311Error::not_found(format!("no service request {id}"))),
    }
}

fn parse_date(params: &Params, key: &str) -> Result<Option<DateTime<Utc>>, Open311Error> {
    params
        .get(key)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Open311Error::bad_request(format!(
                        "{key} must be an ISO 8601 date-time with offset, e.g. 2026-03-02T09:00:00+08:00"
                    ))
                })
        })
        .transpose()
}

/// `GET /open311/v2/requests.json`.
pub async fn list_requests(
    State(app): State<AppState>,
    Extension(state): Extension<Open311State>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ServiceRequest>>, Open311Error> {
    let params = query_params(query.as_deref())?;
    check_jurisdiction(&state, &params)?;
    let status_filter = match params.get("status") {
        None => None,
        Some(raw) => {
            let mut wanted = Vec::new();
            for s in raw.split(',').map(str::trim) {
                match s {
                    "open" | "closed" => wanted.push(s.to_string()),
                    other => {
                        return Err(Open311Error::bad_request(format!(
                            "status `{other}`: expected open or closed"
                        )));
                    }
                }
            }
            Some(wanted)
        }
    };
    let service_codes: Option<Vec<String>> = params
        .get("service_code")
        .map(|raw| raw.split(',').map(|s| s.trim().to_string()).collect());
    let keep = |r: &ServiceRequest| {
        status_filter.as_ref().is_none_or(|s| s.contains(&r.status))
            && service_codes
                .as_ref()
                .is_none_or(|c| r.service_code.as_ref().is_some_and(|code| c.contains(code)))
    };
    if let Some(ids) = params.get("service_request_id") {
        let ids: Vec<RequestId> = ids
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(parse_id)
            .collect::<Result<_, _>>()?;
        if ids.len() > state.config.list_limit {
            return Err(Open311Error::bad_request(format!(
                "at most {} service_request_id values",
                state.config.list_limit
            )));
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(request) = service_request(&app, &state, id).await?
                && keep(&request)
            {
                out.push(request);
            }
        }
        return Ok(Json(out));
    }
    let now = app.commands.clock().now();
    let end = parse_date(&params, "end_date")?.unwrap_or(now);
    let start = match parse_date(&params, "start_date")? {
        Some(start) => start,
        None => end
            .checked_sub_signed(Duration::days(i64::from(state.config.list_days)))
            .ok_or_else(|| Open311Error::bad_request("end_date is out of range"))?,
    };
    if start > end {
        return Err(Open311Error::bad_request("start_date is after end_date"));
    }
    let Some(projections) = state.projections.get() else {
        return Err(Open311Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "listing requests needs the read models (projections.enabled), and their \
             database reachable; ask by service_request_id instead",
        ));
    };
    let candidates = candidates(projections, start, end, now).await?;
    let mut out = Vec::new();
    for id in candidates {
        if out.len() >= state.config.list_limit {
            break;
        }
        if let Some(request) = service_request(&app, &state, id).await?
            && keep(&request)
        {
            out.push(request);
        }
    }
    Ok(Json(out))
}

/// Online requests received in `[start, end]`, newest first, from the request summaries.
async fn candidates(
    projections: &projections::Projections,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<RequestId>, Open311Error> {
    use projections::query::{Dim, Filter, ListQuery, RequestList};
    let unavailable = |e: projections::ProjectionError| {
        Open311Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("read models unavailable: {e}"),
        )
    };
    let mut found: Vec<(DateTime<Utc>, RequestId)> = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListQuery {
            list: RequestList::All,
            filter: Filter {
                dims: vec![(Dim::Channel, Channel::Online.as_str().to_string())],
                from: Some(projections::fold::periods(start).2),
                to: Some(projections::fold::periods(end).2),
                dispatched_only: false,
            },
            since_position: None,
            limit: 1000,
            cursor: cursor.take(),
            now,
        };
        let page = projections.requests(&query).await.map_err(unavailable)?;
        for summary in page.items {
            if summary.received_at >= start
                && summary.received_at <= end
                && let Ok(id) = Uuid::parse_str(&summary.request_id)
            {
                found.push((summary.received_at, id));
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found.into_iter().map(|(_, id)| id).collect())
}
