//! The screens of the web UI: key (the page's `data-page`, which the script dispatches on),
//! URL, template and title.

pub struct Page {
    pub key: &'static str,
    pub path: &'static str,
    pub template: &'static str,
    pub title: &'static str,
    /// Listed in the navigation bar (the detail page is reached from the list).
    pub in_nav: bool,
    /// The navigation entry highlighted on this page.
    pub section: &'static str,
}

const fn page(
    key: &'static str,
    path: &'static str,
    template: &'static str,
    title: &'static str,
) -> Page {
    Page {
        key,
        path,
        template,
        title,
        in_nav: true,
        section: key,
    }
}

pub static PAGES: &[Page] = &[
    page("overview", "/ui/", "overview.html", "Overview"),
    page("snapshots", "/ui/snapshots", "snapshots.html", "Snapshots"),
    Page {
        key: "snapshot",
        path: "/ui/snapshots/{id}",
        template: "snapshot.html",
        title: "Snapshot",
        in_nav: false,
        section: "snapshots",
    },
    page("restore", "/ui/restore", "restore.html", "Restore"),
    page("retention", "/ui/retention", "retention.html", "Retention"),
    page("jobs", "/ui/jobs", "jobs.html", "Jobs"),
    page(
        "attachments",
        "/ui/attachments",
        "attachments.html",
        "Attachments",
    ),
];
