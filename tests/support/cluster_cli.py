"""What a crash test does to a cluster's database, run as `python -m tests.support.cluster_cli`.

The test process stays on pytest-django's database; this runs with the environment of a
`tests.support.cluster.Setup` and prints JSON.

    submit SKU [EMAIL [N]]  a bria-product-packshot job for a 64x64 upload with `sku` SKU
                      (N of them, SKU-0 to SKU-N-1), in EMAIL's workspace (made if need be)
    times ID...       each job's status, when it was made and when it was submitted
    job ID            the job's state, its outputs and its Segmind request id
    jobs ID...        the same for each job (one process for all)
    price CREDITS     what a Segmind packshot costs (a JobPrice row; `submit` makes it 0)
    credits EMAIL     EMAIL's workspace's balance, held credits and ledger entries by kind
    lease             who holds the Segmind dispatcher's lease, and until when
    sweep             the sweeper, with jobs counted stale at once
    schedules-later   every django-q2 schedule's next run put off by a day
    watches           the segmind-watch-lease tasks run: name (with the worker's pid), result
    local-turns N     workspace A's N local jobs committed at once, then B's one job
    started           every job's workspace, status and start, in the order they started
    local NAME N      N local jobs of workspace NAME (made on first use), committed at once
    hooks NAME URL N  N webhook endpoints of workspace NAME, all posting to URL
    deliveries NAME   workspace NAME's webhook deliveries: status and attempts of each
"""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from datetime import timedelta
from typing import Any


def main(argv: list[str]) -> Any:
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction
    from django.utils import timezone
    from PIL import Image

    from accounts import services as accounts_services
    from accounts.models import CreditEntry, Lease, Membership, User, WebhookDelivery
    from jobs import dispatcher as provider
    from jobs import services
    from jobs.models import AssetKind, Job, JobPrice

    def workspace_user(name: str) -> Any:
        email = f"{name.lower()}@example.com"
        user = User.objects.filter(email=email).first()
        if user is None:
            user = accounts_services.user_signup(
                email=email, password="cluster-test-2026", workspace_name=name
            )
        return user

    def photo(size: int) -> Any:
        buffer = io.BytesIO()
        image = Image.new("RGB", (size, size), (240, 240, 240))
        image.paste((200, 80, 50), (size // 4, size // 4, size * 3 // 4, size * 3 // 4))
        image.save(buffer, format="JPEG")
        return SimpleUploadedFile("mug.jpg", buffer.getvalue(), content_type="image/jpeg")

    def local_submit(name: str, count: int, size: int) -> list[str]:
        user = workspace_user(name)
        tenant = Membership.objects.get(user=user).tenant
        with transaction.atomic():
            return [
                str(
                    services.job_submit(
                        tenant=tenant, user=user, model="bria-product-packshot", upload=photo(size)
                    ).id
                )
                for _ in range(count)
            ]

    command, *args = argv
    if command == "local-turns":
        # Big enough photos that a job takes a while: B's job is sent while A's batch runs.
        a = local_submit("Alpha", int(args[0]), 1600)
        b = local_submit("Beta", 1, 1600)
        # How far A's batch had gone once B's job was committed (read after: on a slow
        # machine it may count a job or two more, never fewer).
        started = Job.objects.filter(tenant__name="Alpha", started_at__isnull=False).count()
        return {"a": a, "b": b, "alpha_started_when_b_sent": started}
    if command == "local":
        # `local <workspace> <count> [<photo size>]`: small photos unless told.
        return local_submit(args[0], int(args[1]), int(args[2]) if len(args) > 2 else 64)
    if command == "hooks":
        user = workspace_user(args[0])
        tenant = Membership.objects.get(user=user).tenant
        for _ in range(int(args[2])):
            accounts_services.webhook_endpoint_create(tenant=tenant, url=args[1])
        return {"endpoints": int(args[2])}
    if command == "deliveries":
        return [
            {"status": status, "attempts": attempts}
            for status, attempts in WebhookDelivery.objects.filter(
                tenant__name=args[0]
            ).values_list("status", "attempts")
        ]
    if command == "started":
        return [
            {"id": str(pk), "workspace": name, "status": status}
            for pk, name, status in Job.objects.filter(started_at__isnull=False)
            .order_by("started_at")
            .values_list("pk", "tenant__name", "status")
        ]
    if command == "submit":
        email = args[1] if len(args) > 1 else "crash@example.com"
        count = int(args[2]) if len(args) > 2 else 0
        user = User.objects.filter(email=email).first()
        if user is None:
            user = accounts_services.user_signup(
                email=email, password="crash-test-2026", workspace_name=email.split("@")[0]
            )
        tenant = Membership.objects.get(user=user).tenant
        buffer = io.BytesIO()
        picture = Image.new("RGB", (64, 64), (200, 80, 50))
        picture.paste((40, 60, 160), (16, 16, 48, 48))  # a product: a flat colour is refused
        picture.save(buffer, format="JPEG")
        # Free unless the test priced it (`price`): these runs are about delivery; with no
        # row a Segmind job would cost SEGMIND_DEFAULT_PRICE.
        JobPrice.objects.get_or_create(
            model="bria-product-packshot", engine="segmind", defaults={"credits": 0}
        )
        ids = []
        for sku in [f"{args[0]}-{i}" for i in range(count)] if count else [args[0]]:
            upload = SimpleUploadedFile("mug.jpg", buffer.getvalue(), content_type="image/jpeg")
            job = services.job_submit(
                tenant=tenant,
                user=user,
                model="bria-product-packshot",
                upload=upload,
                params={"sku": sku},
            )
            ids.append(str(job.id))
        return {"id": ids[0], "ids": ids}
    if command == "times":
        rows = Job.objects.filter(pk__in=args).values_list(
            "pk", "status", "created_at", "submitted_at", "attempts"
        )
        return {
            str(pk): {
                "status": status,
                "created_at": created.timestamp(),
                "submitted_at": submitted.timestamp() if submitted else None,
                "attempts": attempts,
            }
            for pk, status, created, submitted, attempts in rows
        }

    def job_state(job: Any) -> dict[str, Any]:
        return {
            "status": job.status,
            "error_code": job.error_code,
            "request_id": job.provider_request_id,
            "attempts": job.attempts,
            "outputs": job.assets.filter(kind=AssetKind.OUTPUT).count(),
            "crash_resubmits": job.crash_resubmits,
            "sku": job.params.get("sku", ""),
        }

    if command == "job":
        return job_state(Job.objects.get(pk=args[0]))
    if command == "jobs":
        return {str(job.pk): job_state(job) for job in Job.objects.filter(pk__in=args)}
    if command == "price":
        JobPrice.objects.update_or_create(
            model="bria-product-packshot", engine="segmind", defaults={"credits": int(args[0])}
        )
        return {"credits": int(args[0])}
    if command == "credits":
        tenant = Membership.objects.get(user__email=args[0]).tenant
        kinds = CreditEntry.objects.filter(tenant=tenant).values_list("kind", flat=True)
        return {
            "balance": tenant.credit_balance,
            "held": tenant.credit_held,
            "entries": dict(Counter(kinds)),
        }
    if command == "lease":
        lease = Lease.objects.filter(name=provider.LEASE).first()
        until = lease.leased_until if lease else None
        return {
            "holder": lease.holder if lease else "",
            "leased_until": until.isoformat() if until else None,
            "held": bool(until and until > timezone.now()),
        }
    if command == "broker-queue":
        # Tasks waiting in the jobs cluster's broker queue (not those a cluster fetched).
        from django_q.brokers import get_broker

        return {"waiting": get_broker().queue_size()}
    if command == "sweep":
        with transaction.atomic():
            return services.jobs_sweep(stale_after=timedelta(microseconds=1))
    if command == "schedules-later":
        from django_q.models import Schedule

        later = timezone.now() + timedelta(days=1)
        return {"put_off": Schedule.objects.update(next_run=later)}
    if command == "watches":
        from django_q.models import Task

        tasks = Task.objects.filter(func="jobs.tasks.segmind_watch_lease").order_by("started")
        return [
            {"id": t.id, "name": t.name, "result": t.result, "cluster": t.cluster} for t in tasks
        ]
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
