//! Aggregates order items into statistics, a typical JSON-in, JSON-out
//! edge function built on serde and serde_json:
//!
//! ```text
//! {"items":[{"category":"books","price":12.5,"qty":2},
//!           {"category":"games","price":40,"qty":1}]}
//! → {"count":2,"total_qty":3,"revenue":65.0,"min_price":12.5,"max_price":40.0,
//!    "mean_price":26.25,"by_category":{"books":{"count":1,"qty":2,"revenue":25.0},
//!    "games":{"count":1,"qty":1,"revenue":40.0}}}
//! ```
//!
//! `qty` defaults to 1 and `category` to `"other"`. Invalid input gets
//! `{"error": "..."}` on stdout and exit code 2.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    items: Vec<Item>,
}

/// One line of the order; unknown fields (ids, names) are ignored.
#[derive(Deserialize)]
struct Item {
    #[serde(default = "other")]
    category: String,
    price: f64,
    #[serde(default = "one")]
    qty: u64,
}

fn other() -> String {
    "other".into()
}

fn one() -> u64 {
    1
}

/// Totals of one category.
#[derive(Serialize, Default)]
struct Bucket {
    count: u64,
    qty: u64,
    revenue: f64,
}

/// The response.
#[derive(Serialize)]
struct Stats {
    count: usize,
    total_qty: u64,
    revenue: f64,
    min_price: Option<f64>,
    max_price: Option<f64>,
    mean_price: Option<f64>,
    by_category: BTreeMap<String, Bucket>,
}

fn aggregate(order: &Order) -> Stats {
    let mut by_category: BTreeMap<String, Bucket> = BTreeMap::new();
    let (mut total_qty, mut revenue) = (0, 0.0);
    for item in &order.items {
        let line = item.price * item.qty as f64;
        let bucket = by_category.entry(item.category.clone()).or_default();
        bucket.count += 1;
        bucket.qty += item.qty;
        bucket.revenue += line;
        total_qty += item.qty;
        revenue += line;
    }
    let prices = order.items.iter().map(|i| i.price);
    let count = order.items.len();
    Stats {
        count,
        total_qty,
        revenue,
        min_price: prices.clone().reduce(f64::min),
        max_price: prices.clone().reduce(f64::max),
        mean_price: (count > 0).then(|| prices.sum::<f64>() / count as f64),
        by_category,
    }
}

fn main() {
    match aether_guest::input_json::<Order>() {
        Ok(order) => aether_guest::output_json(&aggregate(&order)),
        Err(e) => {
            let reason = format!("expected {{\"items\":[{{\"price\":..}}]}}: {e}");
            aether_guest::output_json(&serde_json::json!({ "error": reason }));
            std::process::exit(2);
        }
    }
}
