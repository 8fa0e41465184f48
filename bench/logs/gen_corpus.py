#!/usr/bin/env python3
"""Writes a realistic, deterministic log corpus: nginx access logs, JSON
application logs, and Java/Python stack traces (one line per record; stack
traces are multi-line records joined with literal '\\n' escapes, as a
shipper sends them). Each line is prefixed with its kind and a tab
("access\t...", "app\t...", "trace\t...") so the benchmark can split it
into streams.
  gen_corpus.py OUT [--mib 256] [--seed 1]
"""
import argparse
import json
import random

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--mib", type=int, default=256, help="corpus size in MiB (1024 for 1 GiB)")
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
r = random.Random(a.seed)

paths = ["/api/v1/items", "/api/v1/items/{}", "/api/v1/cart", "/checkout", "/static/app.{}.js", "/healthz",
         "/api/v1/users/{}/orders", "/login", "/search?q={}"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "curl/7.88.1", "kube-probe/1.28", "Go-http-client/1.1"]
services = ["checkout", "cart", "payment", "search", "auth"]
msgs = ["request completed", "cache miss", "retrying upstream call", "user logged in", "order placed",
        "payment authorized", "inventory reserved", "slow query", "connection reset by peer", "token refreshed"]
frames = ["com.shop.checkout.CheckoutService.placeOrder(CheckoutService.java:{})",
          "com.shop.payment.Client.authorize(Client.java:{})",
          "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{})",
          "java.base/java.lang.Thread.run(Thread.java:{})",
          "io.netty.channel.nio.NioEventLoop.run(NioEventLoop.java:{})"]
t = 1700000000.0
limit = a.mib << 20
written = 0
with open(a.out, "w") as f:
    while written < limit:
        t += r.expovariate(2000)
        k = r.random()
        if k < 0.6:
            ip = "10.%d.%d.%d" % (r.randrange(4), r.randrange(256), r.randrange(256))
            path = r.choice(paths).format(r.randrange(10000))
            status = r.choices([200, 201, 204, 301, 404, 500, 503], [70, 5, 5, 3, 10, 5, 2])[0]
            line = 'access\t%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s" %.3f' % (
                ip, "14/Nov/2023:22:%02d:%06.3f +0000" % ((int(t) // 60) % 60, t % 60), r.choice(["GET", "POST"]),
                path, status, r.randrange(50, 50000), r.choice(agents), r.expovariate(20))
        elif k < 0.97:
            rec = {"ts": "%.6f" % t, "level": r.choices(["info", "debug", "warn", "error"], [70, 15, 10, 5])[0],
                   "service": r.choice(services), "msg": r.choice(msgs),
                   "trace_id": "%032x" % r.getrandbits(128), "span_id": "%016x" % r.getrandbits(64),
                   "user_id": r.randrange(100000), "duration_ms": round(r.expovariate(0.05), 2)}
            line = "app\t" + json.dumps(rec, separators=(",", ":"))
        else:
            n = r.randrange(5, 25)
            st = ["java.lang.IllegalStateException: order %d in state %s" % (r.randrange(10**6), r.choice(["NEW", "PAID"]))]
            st += ["\\tat " + r.choice(frames).format(r.randrange(40, 900)) for _ in range(n)]
            line = "trace\t" + "\\n".join(st)
        f.write(line + "\n")
        written += len(line) + 1
