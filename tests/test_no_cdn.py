"""Nothing is fetched from another site at run time: the templates and static files load
scripts, styles, images and fonts from ProductStudio itself, the rendered pages too, and the
Content-Security-Policy tells the browser to refuse anything else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from jobs import services as job_services
from productstudio.lib.csp import ContentSecurityPolicyMiddleware, csp_extend

ROOT = Path(settings.BASE_DIR)
SCANNED = [ROOT / "templates", ROOT / "static"]

# What makes a browser fetch something: a script, a stylesheet or icon, an image or media,
# a CSS url() or @import. Links (<a href>) only navigate, and are not listed.
RESOURCE_PATTERNS = [
    re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?([^\"'\s>]+)", re.I),
    re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?([^\"'\s>]+)", re.I),
    re.compile(
        r"<(?:img|source|video|audio|iframe|embed|track|input)\b[^>]*\b(?:src|srcset|poster)\s*=\s*[\"']?([^\"'\s>]+)",
        re.I,
    ),
    re.compile(r"\burl\(\s*[\"']?([^\"')\s]+)", re.I),
    re.compile(r"@import\s+[\"']([^\"']+)", re.I),
    re.compile(r"\bimportScripts\(\s*[\"']([^\"']+)", re.I),
    re.compile(r"\bfetch\(\s*[\"'](https?:)?//([^\"']+)", re.I),
]
OFF_SITE = re.compile(r"^(?:https?:)?//", re.I)
# Namespaces in SVG files are identifiers, not fetched.
NOT_FETCHED = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def off_site_resources(text: str) -> list[str]:
    found = []
    for pattern in RESOURCE_PATTERNS:
        for match in pattern.finditer(text):
            url = match.group(1) or ""
            if pattern.pattern.startswith(r"\bfetch"):
                url = "//" + match.group(2)
            if OFF_SITE.match(url) and url not in NOT_FETCHED:
                found.append(url)
    return found


def _files() -> list[Path]:
    suffixes = {".html", ".css", ".js", ".svg", ".txt"}
    return [p for base in SCANNED for p in base.rglob("*") if p.suffix in suffixes]


def test_the_scanner_finds_off_site_resources_of_every_kind():
    page = """
      <script src="https://cdn.example.com/x.js"></script>
      <link rel="stylesheet" href="//fonts.example.com/css">
      <img alt="" src='http://img.example.com/a.png'>
      <style>@font-face { src: url("https://fonts.example.com/a.woff2"); }</style>
      @import "https://cdn.example.com/reset.css";
      fetch("https://api.example.com/v1")
      <a href="https://www.segmind.com/">Segmind</a>
      <script src="/static/js/nav.js"></script><img alt="" src="data:image/png;base64,AA">
    """
    assert off_site_resources(page) == [
        "https://cdn.example.com/x.js",
        "//fonts.example.com/css",
        "http://img.example.com/a.png",
        "https://fonts.example.com/a.woff2",
        "https://cdn.example.com/reset.css",
        "//api.example.com/v1",
    ]


def test_templates_and_static_files_load_nothing_from_another_site():
    files = _files()
    assert any(p.name == "base.html" for p in files) and any(p.suffix == ".css" for p in files)
    offenders = {
        str(p.relative_to(ROOT)): urls
        for p in files
        if (urls := off_site_resources(p.read_text(errors="replace")))
    }
    assert offenders == {}


def test_templates_have_no_inline_script_or_style(db):
    # The CSP allows neither: an inline one would silently not run.
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=\"|\son[a-z]+=\"", re.I)
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "templates").rglob("*.html")
        if inline.search(p.read_text())
    ]
    assert offenders == []


MAIN_PAGES = [
    "dashboard",
    "job_new",
    "gallery",
    "preset_list",
    "preset_new",
    "credits",
    "team",
    "workspace_settings",
    "api_keys",
]


@pytest.fixture
def workspace_with_a_job(tenant, owner, product_jpeg, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
    return job


@pytest.mark.parametrize("name", MAIN_PAGES)
def test_each_main_page_renders_with_resources_from_this_site_and_a_strict_csp(
    name, owner_client, tenant, workspace_with_a_job
):
    response = owner_client.get(reverse(name, args=[tenant.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/css/app.css" in page
    assert off_site_resources(page) == []
    _assert_strict(response["Content-Security-Policy"])


@pytest.mark.parametrize("path", ["/login/", "/signup/", "/password-reset/", "/no-such-page/"])
def test_public_pages_too(db, path):
    response = Client().get(path)
    assert off_site_resources(response.content.decode()) == []
    _assert_strict(response["Content-Security-Policy"])


def test_the_job_page_too(owner_client, tenant, workspace_with_a_job):
    response = owner_client.get(reverse("job_detail", args=[tenant.slug, workspace_with_a_job.pk]))
    assert response.status_code == 200
    assert off_site_resources(response.content.decode()) == []
    _assert_strict(response["Content-Security-Policy"])


def _directives(policy: str) -> dict[str, list[str]]:
    return {parts[0]: parts[1:] for item in policy.split(";") if (parts := item.split())}


def _assert_strict(policy: str) -> None:
    directives = _directives(policy)
    assert directives["default-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # Nothing loosens default-src for scripts, styles, fonts or connections.
    for name in ("script-src", "style-src", "font-src", "connect-src", "media-src"):
        assert name not in directives, name
    for sources in directives.values():
        assert not any(s.startswith(("http", "*")) or s == "https:" for s in sources), sources


def test_the_api_docs_allow_their_inline_style_and_nothing_else(db):
    response = Client().get("/api/docs/")
    directives = _directives(response["Content-Security-Policy"])
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["default-src"] == ["'self'"]
    assert "script-src" not in directives
    assert off_site_resources(response.content.decode()) == []


def test_a_view_can_extend_the_policy_and_a_header_already_set_is_kept(rf, settings):
    settings.CSP_DIRECTIVES = {"default-src": ["'self'"]}
    from django.http import HttpResponse

    @csp_extend(img_src=["https://images.example.com"])
    def view(request):
        return HttpResponse("ok")

    middleware = ContentSecurityPolicyMiddleware(view)
    policy = middleware(rf.get("/"))["Content-Security-Policy"]
    assert policy == "default-src 'self'; img-src 'self' https://images.example.com"

    def own_header(request):
        response = HttpResponse("ok")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    kept = ContentSecurityPolicyMiddleware(own_header)(rf.get("/"))
    assert kept["Content-Security-Policy"] == "default-src 'none'"
