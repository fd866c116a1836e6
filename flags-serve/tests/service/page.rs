//! The status page's SVG charts read by a real XML parser: what a browser draws is what the
//! attributes say (an unquoted value before `/>` keeps the slash: `y2=136/>` is `"136/"`).

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::Service;

const ADMIN: &str = "admin-secret-0123";

/// Every `<svg>...</svg>` of an HTML page, parsed as XML (panics naming the one that is not).
fn svgs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("a closed svg") + start + "</svg>".len();
        let svg = &rest[start..end];
        if let Err(e) = roxmltree::Document::parse(svg) {
            panic!("not well-formed ({e}): {svg}");
        }
        out.push(svg.to_owned());
        rest = &rest[end..];
    }
    out
}

fn attributes<'a>(node: roxmltree::Node<'a, 'a>, names: &[&str]) -> Vec<&'a str> {
    names
        .iter()
        .map(|name| node.attribute(*name).unwrap_or("(absent)"))
        .collect()
}

/// The rollout of checkout-v2 in prod pushed, ticked up once and (its health check failing)
/// back once: the chart has both axes where they belong, dashed stage guides, and the halt
/// drawn last (above the rest).
#[tokio::test]
async fn the_rollout_chart_parses_as_xml_with_its_axes_guides_and_halt() {
    let service = Service::builder()
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .start()
        .await;
    let healthy = service.path().join("healthy");
    let rollout = service.checkout().join("flags/checkout-v2.yaml");
    let text = std::fs::read_to_string(&rollout)
        .unwrap()
        .replace("soak: 1h", "soak: 0s")
        .replace("soak: 4h", "soak: 0s")
        .replace(
            "health: { url: \"https://status.example.com/checkout/healthy\" }",
            &format!("health: {{ command: \"test -e {}\" }}", healthy.display()),
        );
    assert!(text.contains("test -e"), "the example's health check moved");
    std::fs::write(&rollout, text).unwrap();
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    let tick = || async {
        let reply = service
            .post("/api/v1/environments/prod/rollouts/tick")
            .bearer(ADMIN)
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    };
    std::fs::write(&healthy, "").unwrap();
    tick().await;
    std::fs::remove_file(&healthy).unwrap();
    tick().await;

    let page = service.get("/").bearer(ADMIN).send().await;
    assert_eq!(page.status, StatusCode::OK);
    let svgs = svgs(&page.body);
    let chart = svgs
        .iter()
        .find(|s| s.contains("rollout-chart"))
        .unwrap_or_else(|| panic!("no rollout chart: {}", page.body));
    let doc = roxmltree::Document::parse(chart).unwrap();
    let svg = doc.root_element();
    assert_eq!(
        attributes(svg, &["role", "width", "height"]),
        ["img", "480", "160"]
    );
    let axes = svg
        .children()
        .find(|n| n.attribute("class") == Some("axes"))
        .expect("g.axes");
    let lines: Vec<_> = axes.children().filter(|n| n.has_tag_name("line")).collect();
    assert_eq!(lines.len(), 2, "{chart}");
    let xy = ["x1", "y1", "x2", "y2"];
    // The x-axis along the bottom (y 136, from x 44 to 424), the y-axis up the left side.
    assert_eq!(
        attributes(lines[0], &xy),
        ["44", "136", "424", "136"],
        "{chart}"
    );
    assert_eq!(
        attributes(lines[1], &xy),
        ["44", "10", "44", "136"],
        "{chart}"
    );
    let guides: Vec<_> = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("guide"))
        .map(|g| g.children().find(|n| n.has_tag_name("line")).unwrap())
        .collect();
    assert_eq!(guides.len(), 4, "one per stage: {chart}");
    for guide in guides {
        assert_eq!(guide.attribute("stroke-dasharray"), Some("3"), "{chart}");
        assert_eq!(guide.attribute("y1"), guide.attribute("y2"), "{chart}");
    }
    let circles: Vec<_> = svg
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .collect();
    let classes: Vec<_> = circles.iter().map(|c| c.attribute("class")).collect();
    assert_eq!(
        classes,
        [Some("point"), Some("point"), Some("point halt")],
        "{chart}"
    );
    assert_eq!(
        circles[2].attribute("cy"),
        circles[0].attribute("cy"),
        "back to 1%"
    );
}
