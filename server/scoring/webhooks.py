"""Webhook subscriptions and their delivery log: admin JSON API and page.

Thin handlers over ``scoring.webhooks``: the URL and events are validated (and the host
resolved) on a worker thread before anything is stored; every create and delete is audited
with the URL scrubbed of credentials, query and fragment. The signing secret is returned once,
by the create call, and never listed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from common import audit
from common.errors import NotFound
from scoring import webhooks
from server.http.auth import client_address, require_admin
from server.http.bodies import json_body, path_number
from server.http.keys import DB, SETTINGS
from server.http.pages import render
from server.people.accounts import User
from tasks.source import scrub_url

routes = web.RouteTableDef()


async def _validate(request: web.Request, url: object, events: object) -> webhooks.Subscription:
    allowed = request.app[SETTINGS].allowed_webhook_hosts
    # InvalidWebhook is answered by the error middleware (422 naming every problem)
    return await asyncio.to_thread(webhooks.validate_subscription, url, events, allowed)


async def _create(
    request: web.Request, admin: User, url: object, events: object
) -> tuple[dict[str, Any], str]:
    subscription = await _validate(request, url, events)
    actor = admin.actor(client_address(request))

    def write(d: Any) -> tuple[dict[str, Any], str]:
        webhook, secret = webhooks.create(d, subscription, admin.id)
        audit.record(d, actor, "webhook.created", "webhook", webhook["id"],
                     url=scrub_url(subscription.url), events=list(subscription.events))
        return webhook, secret

    return await request.app[DB].write(write)


async def _delete(request: web.Request, admin: User) -> dict[str, Any]:
    webhook_id = path_number(request, "webhook_id", "webhook")
    actor = admin.actor(client_address(request))

    def write(d: Any) -> dict[str, Any]:
        webhook = webhooks.delete(d, webhook_id)
        audit.record(d, actor, "webhook.deleted", "webhook", webhook_id,
                     url=scrub_url(webhook["url"]))
        return webhook

    return await request.app[DB].write(write)  # WebhookNotFound: 404


@routes.post("/api/v1/webhooks")
async def api_create(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(request, {"url": str, "events": list})
    webhook, secret = await _create(request, admin, body["url"], body["events"])
    return web.json_response({"webhook": webhook, "secret": secret}, status=201)


@routes.get("/api/v1/webhooks")
async def api_list(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response({"webhooks": await request.app[DB].read(webhooks.list_webhooks)})


@routes.delete("/api/v1/webhooks/{webhook_id}")
async def api_delete(request: web.Request) -> web.Response:
    webhook = await _delete(request, require_admin(request))
    return web.json_response({"deleted": webhook["id"]})


@routes.get("/api/v1/webhooks/{webhook_id}/deliveries")
async def api_deliveries(request: web.Request) -> web.Response:
    require_admin(request)
    webhook_id = path_number(request, "webhook_id", "webhook")

    def read(d: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return webhooks.get(d, webhook_id), webhooks.deliveries(d, webhook_id)

    webhook, log = await request.app[DB].read(read)
    if webhook is None:
        raise NotFound(f"There is no webhook with id {webhook_id}.")
    return web.json_response({"webhook": webhook, "deliveries": log})


async def _redeliver(request: web.Request, admin: User) -> dict[str, Any]:
    webhook_id = path_number(request, "webhook_id", "webhook")
    delivery_id = path_number(request, "delivery_id", "delivery")
    actor = admin.actor(client_address(request))

    def write(d: Any) -> dict[str, Any]:
        row = webhooks.redeliver(d, webhook_id, delivery_id)  # NotFound, RedeliveryRefused
        audit.record(d, actor, "webhook.redelivered", "webhook", webhook_id,
                     delivery=delivery_id)
        return row

    return await request.app[DB].write(write)


@routes.post("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def api_redeliver(request: web.Request) -> web.Response:
    delivery = await _redeliver(request, require_admin(request))
    return web.json_response({"delivery": delivery}, status=202)


# ---- page ---------------------------------------------------------------------------------


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    require_admin(request)

    def read(d: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return webhooks.list_webhooks(d), webhooks.recent_deliveries(d)

    hooks, log = await request.app[DB].read(read)
    context = {"webhooks": hooks, "deliveries": log, "events": webhooks.EVENTS, **extra}
    return render(request, "webhooks.html", context, status=status)


@routes.get("/admin/webhooks")
async def webhooks_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/admin/webhooks")
async def webhooks_create_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    url = str(form.get("url", ""))
    events = [str(e) for e in form.getall("events", [])]
    try:
        webhook, secret = await _create(request, admin, url, events)
    except webhooks.InvalidWebhook as exc:
        return await _page(request, status=422, error=exc.message, form_url=url)
    return await _page(request, created=webhook, secret=secret)


@routes.post("/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def webhooks_redeliver_submit(request: web.Request) -> web.Response:
    await _redeliver(request, require_admin(request))
    raise web.HTTPSeeOther("/admin/webhooks")


@routes.post("/admin/webhooks/{webhook_id}/delete")
async def webhooks_delete_submit(request: web.Request) -> web.Response:
    await _delete(request, require_admin(request))
    raise web.HTTPSeeOther("/admin/webhooks")
