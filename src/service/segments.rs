//! Segments: app-wide, named sets of companies. Any flag in any environment may use one, so a
//! change to a segment is validated in every environment.

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::flags::{check_text, DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS};
use super::store::segments::{insert_segment, segment_in, update_segment};
use super::write::{Record, Write};
use crate::model::{Segment, SegmentCondition, SegmentKey};

/// Creates (`create`) or replaces a segment.
pub async fn save(
    w: &mut Write<'_>,
    key: &str,
    name: &str,
    description: &str,
    conditions: Vec<SegmentCondition>,
    create: bool,
) -> ServiceResult<()> {
    let key = SegmentKey::parse(key.trim()).map_err(|e| ServiceError::invalid("key", e.to_string()))?;
    let name = check_text("name", name, NAME_MAX_CHARS, true)?;
    let description = check_text("description", description, DESCRIPTION_MAX_CHARS, false)?;
    let segment = Segment {
        key: key.clone(),
        name,
        conditions,
    };
    let before = segment_in(w.conn(), key.as_str()).await?;
    let now = w.now;
    if create {
        insert_segment(w.conn(), &segment, &description, now).await?;
    } else {
        update_segment(w.conn(), &segment, &description, now).await?;
    }
    let shown = |segment: &Segment, description: &str| json!({ "name": segment.name, "description": description, "conditions": segment.conditions });
    let action = if create {
        "segment.created"
    } else {
        "segment.changed"
    };
    let record = Record::of(action, "segment", key.as_str())
        .before(before.map(|b| shown(&b.segment, &b.description)))
        .after(shown(&segment, &description));
    w.record(record).await?;
    w.touch_all();
    Ok(())
}
