//! berth-demo-app.
