//! The parameters of an Open311 call (query string, form-encoded or JSON body) and the
//! create-request parameters turned into an [`IntakeDocument`].

use std::collections::BTreeMap;

use engine_core::catalogue::Item;
use engine_core::questions::{Question, answers_from_form};
use schemas::intake::ResidentContact;
use schemas::{
    AttachmentRef, Channel, Datum, GeoPoint, GridPath, IntakeDocument, PriorityLane, RequestKind,
};
use sha2::{Digest, Sha256};

use super::wire::Open311Error;

/// Longest description the spec allows.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Longest value of any other parameter.
pub const MAX_VALUE_CHARS: usize = 1024;
/// Prefix of the external ids of requests created over Open311.
pub const EXTERNAL_ID_PREFIX: &str = "o311:";
/// The attribute that names the grid.
pub const GRID_ATTRIBUTE: &str = "grid";
/// The attribute that names priority lanes.
pub const LANE_ATTRIBUTE: &str = "priority_lane";
/// Marks the line of the request text that records the submitted location.
pub const LOCATION_LINE: &str = "位置 Location: ";
/// Marks the line of the request text that records other attributes.
pub const ATTRIBUTES_LINE: &str = "属性 Attributes: ";

/// Parameters in the order received; a key may repeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=2` (a query string or a form-encoded body).
    pub fn from_form(bytes: &[u8]) -> Result<Params, Open311Error> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
            .map(Params)
            .map_err(|e| Open311Error::bad_request(format!("malformed form parameters: {e}")))
    }

    /// Parses a JSON object: scalar members are parameters, arrays repeat a key, and an
    /// `attribute` object holds the attributes (`{"attribute": {"grid": "wg-010101"}}`).
    pub fn from_json(bytes: &[u8]) -> Result<Params, Open311Error> {
        if let Some(key) = crate::json_keys::duplicate_key(bytes) {
            return Err(Open311Error::bad_request(key.message()));
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Open311Error::bad_request(format!("malformed JSON body: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(Open311Error::bad_request("the JSON body must be an object"));
        };
        let mut out = Vec::new();
        for (key, value) in object {
            if key == "attribute"
                && let serde_json::Value::Object(attributes) = &value
            {
                for (code, value) in attributes {
                    push_json(&mut out, &format!("attribute[{code}]"), value)?;
                }
                continue;
            }
            push_json(&mut out, &key, &value)?;
        }
        Ok(Params(out))
    }

    /// Adds `other`'s parameters after these.
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The first non-blank value of `key`, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// The attributes: `attribute[code]` and `attribute[code][]`, values in order.
    pub fn attributes(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in &self.0 {
            let Some(rest) = key.strip_prefix("attribute[") else {
                continue;
            };
            let code = rest
                .strip_suffix("][]")
                .or_else(|| rest.strip_suffix(']'))
                .unwrap_or(rest);
            let value = value.trim();
            if !code.is_empty() && !value.is_empty() {
                out.entry(code.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
        out
    }
}

fn push_json(
    out: &mut Vec<(String, String)>,
    key: &str,
    value: &serde_json::Value,
) -> Result<(), Open311Error> {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((key.to_string(), s.clone())),
        serde_json::Value::Number(n) => out.push((key.to_string(), n.to_string())),
        serde_json::Value::Bool(b) => out.push((key.to_string(), b.to_string())),
        serde_json::Value::Array(items) => {
            for item in items {
                match item {
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                        return Err(Open311Error::bad_request(format!(
                            "parameter {key}: nested values are not allowed"
                        )));
                    }
                    other => push_json(out, key, other)?,
                }
            }
        }
        serde_json::Value::Object(_) => {
            return Err(Open311Error::bad_request(format!(
                "parameter {key}: objects are not allowed"
            )));
        }
    }
    Ok(())
}

/// A validated create-request call.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// The catalogue item asked for.
    pub service_code: String,
    /// Latitude and longitude, when given.
    pub lat_long: Option<(f64, f64)>,
    /// The address, when given.
    pub address_string: Option<String>,
    /// The address id, when given.
    pub address_id: Option<String>,
    /// The resident's e-mail.
    pub email: Option<String>,
    /// The resident's first name.
    pub first_name: Option<String>,
    /// The resident's last name.
    pub last_name: Option<String>,
    /// The resident's phone.
    pub phone: Option<String>,
    /// The account id of the submitter (echoed, never stored).
    pub account_id: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// A media URL.
    pub media_url: Option<String>,
    /// The attributes.
    pub attributes: BTreeMap<String, Vec<String>>,
}

fn bounded(params: &Params, key: &str, max: usize) -> Result<Option<String>, Open311Error> {
    match params.get(key) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(Open311Error::bad_request(format!(
            "{key} must be at most {max} characters"
        ))),
        Some(v)
            if v.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') =>
        {
            Err(Open311Error::bad_request(format!(
                "{key} must not contain control characters"
            )))
        }
        Some(v) => Ok(Some(v.to_string())),
    }
}

fn coordinate(params: &Params, key: &str, limit: f64) -> Result<Option<f64>, Open311Error> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= limit => Ok(Some(v)),
        _ => Err(Open311Error::bad_request(format!(
            "{key} must be a number between -{limit} and {limit}"
        ))),
    }
}

impl CreateRequest {
    /// Validates the parameters of `POST /open311/v2/requests.json`.
    pub fn parse(params: &Params) -> Result<CreateRequest, Open311Error> {
        let service_code = bounded(params, "service_code", 64)?
            .ok_or_else(|| Open311Error::bad_request("service_code is required"))?;
        let lat = coordinate(params, "lat", 90.0)?;
        let long = coordinate(params, "long", 180.0)?;
        let lat_long = match (lat, long) {
            (Some(lat), Some(long)) => Some((lat, long)),
            (None, None) => None,
            _ => {
                return Err(Open311Error::bad_request(
                    "lat and long must be given together",
                ));
            }
        };
        let address_string = bounded(params, "address_string", MAX_VALUE_CHARS)?;
        let address_id = bounded(params, "address_id", 128)?;
        if lat_long.is_none() && address_string.is_none() && address_id.is_none() {
            return Err(Open311Error::bad_request(
                "a location is required: lat and long, address_string or address_id",
            ));
        }
        let attributes = params.attributes();
        for (code, values) in &attributes {
            if code.chars().count() > 64
                || values.iter().any(|v| v.chars().count() > MAX_VALUE_CHARS)
            {
                return Err(Open311Error::bad_request(format!(
                    "attribute[{}] is too long",
                    code.chars().take(64).collect::<String>()
                )));
            }
        }
        let media_url = bounded(params, "media_url", 2048)?;
        if let Some(url) = &media_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Open311Error::bad_request(
                "media_url must be an http or https URL",
            ));
        }
        Ok(CreateRequest {
            service_code,
            lat_long,
            address_string,
            address_id,
            email: bounded(params, "email", 256)?,
            first_name: bounded(params, "first_name", 128)?,
            last_name: bounded(params, "last_name", 128)?,
            phone: bounded(params, "phone", 64)?,
            account_id: bounded(params, "account_id", 128)?,
            description: bounded(params, "description", MAX_DESCRIPTION_CHARS)?,
            media_url,
            attributes,
        })
    }

    /// The resident's contact data, when any was given: name = first and last name, phone,
    /// and the e-mail in `address_detail` as `email: <address>` (the contact record has no
    /// e-mail field of its own).
    pub fn contact(&self) -> Option<ResidentContact> {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let contact = ResidentContact {
            name: Some(name).filter(|n| !n.is_empty()),
            phone: self.phone.clone(),
            id_number: None,
            address_detail: self.email.as_ref().map(|e| format!("email: {e}")),
        };
        (contact.name.is_some() || contact.phone.is_some() || contact.address_detail.is_some())
            .then_some(contact)
    }

    /// The priority lanes named by `attribute[priority_lane]`.
    pub fn lanes(&self) -> Result<Vec<PriorityLane>, Open311Error> {
        let mut lanes = Vec::new();
        for value in self.attributes.get(LANE_ATTRIBUTE).into_iter().flatten() {
            let lane = match value.as_str() {
                "elderly" => PriorityLane::Elderly,
                "military" => PriorityLane::Military,
                "disabled" => PriorityLane::Disabled,
                other => {
                    return Err(Open311Error::bad_request(format!(
                        "attribute[{LANE_ATTRIBUTE}]: unknown value `{other}` (elderly, military, disabled)"
                    )));
                }
            };
            if !lanes.contains(&lane) {
                lanes.push(lane);
            }
        }
        Ok(lanes)
    }

    /// The grid code named by `attribute[grid]`.
    pub fn grid(&self) -> Option<&str> {
        self.attributes
            .get(GRID_ATTRIBUTE)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The request text: the description (the service name when there is none), then a
    /// blank line and the submitted location and remaining attributes on marked lines.
    pub fn text(&self, service_name: &str, questions: &[Question]) -> String {
        let mut text = self
            .description
            .clone()
            .unwrap_or_else(|| service_name.to_string());
        let mut trailer = vec![location_line(
            self.address_string.as_deref(),
            self.address_id.as_deref(),
            self.lat_long,
        )];
        let others: Vec<String> = self
            .attributes
            .iter()
            .filter(|(code, _)| {
                code.as_str() != GRID_ATTRIBUTE
                    && code.as_str() != LANE_ATTRIBUTE
                    && !asks(questions, code)
            })
            .map(|(code, values)| format!("{}={}", clean(code), clean(&values.join(","))))
            .collect();
        if !others.is_empty() {
            trailer.push(format!("{ATTRIBUTES_LINE}{}", others.join("; ")));
        }
        text.push_str("\n\n");
        text.push_str(&trailer.join("\n"));
        text
    }

    /// The upstream ticket id: `o311:<service_code>:<32 hex digits>`, a digest of every
    /// parameter but the credentials, the submitter's identity and the day of receipt, so a
    /// resubmission of the same call on the same day yields the same request.
    pub fn external_id(&self, params: &Params, submitter: &str, day: &str) -> String {
        let mut pairs: Vec<&(String, String)> = params
            .0
            .iter()
            .filter(|(k, _)| k != "api_key" && k != "jurisdiction_id")
            .collect();
        pairs.sort();
        let mut hash = Sha256::new();
        hash.update(submitter.as_bytes());
        hash.update([0]);
        hash.update(day.as_bytes());
        for (key, value) in pairs {
            hash.update([0]);
            hash.update(key.as_bytes());
            hash.update([1]);
            hash.update(value.trim().as_bytes());
        }
        let digest = hex::encode(hash.finalize());
        format!(
            "{EXTERNAL_ID_PREFIX}{}:{}",
            self.service_code,
            &digest[..32]
        )
    }

    /// The intake document for this call, under catalogue item `item`: the attributes that
    /// answer the item's questions become typed `answers` (checked by the core at intake),
    /// the others a marked line of the text.
    pub fn intake(
        &self,
        external_id: String,
        location: Option<GridPath>,
        item: &Item,
    ) -> Result<IntakeDocument, Open311Error> {
        let contact = self.contact();
        let answered: BTreeMap<String, Vec<String>> = self
            .attributes
            .iter()
            .filter(|(code, _)| asks(&item.questions, code))
            .map(|(code, values)| (code.clone(), values.clone()))
            .collect();
        Ok(IntakeDocument {
            service_code: Some(item.id.clone()),
            answers: answers_from_form(&item.questions, &answered),
            channel: Channel::Online,
            external_id,
            anonymous: contact.is_none(),
            contact,
            confidential: false,
            no_reply_requested: false,
            location,
            // GeoReport v2 coordinates are WGS-84.
            point: self.lat_long.map(|(lat, lon)| GeoPoint {
                lat,
                lon,
                datum: Datum::Wgs84,
            }),
            address: self.address_string.clone(),
            text: self.text(&item.name, &item.questions),
            attachments: self
                .media_url
                .iter()
                .map(|uri| AttachmentRef {
                    uri: uri.clone(),
                    media_type: None,
                    sha256: None,
                })
                .collect(),
            priority_lanes: self.lanes()?,
            kind: RequestKind::Service,
            raised_at: None,
        })
    }
}

/// Replaces the separators of the marked lines in a submitted value.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '|' | ';' => '/',
            '\n' | '\r' | '\t' => ' ',
            other => other,
        })
        .collect()
}

fn location_line(
    address: Option<&str>,
    address_id: Option<&str>,
    lat_long: Option<(f64, f64)>,
) -> String {
    let mut parts = Vec::new();
    if let Some(address) = address {
        parts.push(clean(address));
    }
    if let Some(id) = address_id {
        parts.push(format!("address_id {}", clean(id)));
    }
    if let Some((lat, long)) = lat_long {
        parts.push(format!("lat {lat}, long {long}"));
    }
    format!("{LOCATION_LINE}{}", parts.join(" | "))
}

/// What [`CreateRequest::text`] recorded, read back from a request text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// The description as submitted (`None` when the text is only the service name).
    pub description: String,
    /// The address.
    pub address: Option<String>,
    /// The address id.
    pub address_id: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub long: Option<f64>,
}

impl Recorded {
    /// Splits a request text written by [`CreateRequest::text`] into its parts.
    pub fn read(text: &str) -> Recorded {
        let Some((description, trailer)) = text.rsplit_once("\n\n") else {
            return Recorded {
                description: text.to_string(),
                ..Recorded::default()
            };
        };
        let mut recorded = Recorded {
            description: description.to_string(),
            ..Recorded::default()
        };
        let mut marked = false;
        for line in trailer.lines() {
            if let Some(location) = line.strip_prefix(LOCATION_LINE) {
                marked = true;
                for part in location.split(" | ") {
                    if let Some(id) = part.strip_prefix("address_id ") {
                        recorded.address_id = Some(id.to_string());
                    } else if let Some(coords) = part.strip_prefix("lat ") {
                        let mut it = coords.split(", long ");
                        recorded.lat = it.next().and_then(|v| v.parse().ok());
                        recorded.long = it.next().and_then(|v| v.parse().ok());
                    } else if !part.is_empty() {
                        recorded.address = Some(part.to_string());
                    }
                }
            } else if line.starts_with(ATTRIBUTES_LINE) {
                marked = true;
            }
        }
        if !marked {
            recorded.description = text.to_string();
        }
        recorded
    }
}

/// Whether `code` is one of the item's questions.
fn asks(questions: &[Question], code: &str) -> bool {
    questions.iter().any(|q| q.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_text_records_location_and_attributes_and_reads_back() {
        let p = params(&[
            ("service_code", "uc-road-damage"),
            ("lat", "34.77"),
            ("long", "117.59"),
            ("address_string", "文化路 12 | 北门"),
            ("address_id", "A-17"),
            ("description", "路面塌陷\n\n很危险"),
            ("attribute[grid]", "wg-010101"),
            ("attribute[ASSET]", "lamp-7"),
        ]);
        let create = CreateRequest::parse(&p).unwrap();
        let text = create.text("Road damage", &[]);
        assert!(text.contains("ASSET=lamp-7"), "{text}");
        let back = Recorded::read(&text);
        assert_eq!(back.description, "路面塌陷\n\n很危险");
        assert_eq!(back.address.as_deref(), Some("文化路 12 / 北门"));
        assert_eq!(back.address_id.as_deref(), Some("A-17"));
        assert_eq!(back.lat, Some(34.77));
        assert_eq!(back.long, Some(117.59));
        // A text not written by Open311 reads as all description.
        assert_eq!(Recorded::read("a\n\nb").description, "a\n\nb");
    }

    #[test]
    fn bad_parameters_are_refused() {
        for (bad, why) in [
            (params(&[("lat", "1"), ("long", "2")]), "service_code"),
            (params(&[("service_code", "x")]), "location"),
            (
                params(&[("service_code", "x"), ("lat", "91"), ("long", "2")]),
                "lat",
            ),
            (params(&[("service_code", "x"), ("lat", "1")]), "together"),
            (
                params(&[
                    ("service_code", "x"),
                    ("address_string", "a"),
                    ("media_url", "file:///etc/passwd"),
                ]),
                "media_url",
            ),
        ] {
            let error = CreateRequest::parse(&bad).unwrap_err();
            assert!(error.description.contains(why), "{why}: {error:?}");
        }
    }

    #[test]
    fn the_external_id_ignores_credentials_and_order_but_not_content() {
        let a = params(&[
            ("service_code", "x"),
            ("address_string", "a"),
            ("api_key", "k1"),
        ]);
        let b = params(&[
            ("api_key", "k2"),
            ("address_string", "a"),
            ("service_code", "x"),
        ]);
        let c = params(&[("service_code", "x"), ("address_string", "b")]);
        let id = |p: &Params, who: &str, day: &str| {
            CreateRequest::parse(p).unwrap().external_id(p, who, day)
        };
        assert_eq!(id(&a, "app", "2026-03-02"), id(&b, "app", "2026-03-02"));
        assert_ne!(id(&a, "app", "2026-03-02"), id(&c, "app", "2026-03-02"));
        assert_ne!(id(&a, "app", "2026-03-02"), id(&a, "app", "2026-03-03"));
        assert_ne!(id(&a, "app", "2026-03-02"), id(&a, "other", "2026-03-02"));
        assert!(id(&a, "app", "2026-03-02").starts_with("o311:x:"));
    }

    #[test]
    fn json_bodies_and_list_attributes_parse() {
        let p = Params::from_json(
            br#"{"service_code":"x","lat":34.5,"long":117,"attribute":{"grid":"wg-1","priority_lane":["elderly","disabled"]}}"#,
        )
        .unwrap();
        let create = CreateRequest::parse(&p).unwrap();
        assert_eq!(create.grid(), Some("wg-1"));
        assert_eq!(
            create.lanes().unwrap(),
            vec![PriorityLane::Elderly, PriorityLane::Disabled]
        );
        let form = Params::from_form(b"service_code=x&attribute%5Bpriority_lane%5D%5B%5D=military")
            .unwrap();
        assert_eq!(form.attributes()["priority_lane"], vec!["military"]);
        assert!(Params::from_json(b"[1]").is_err());
    }
}
