"""How `retinanet serve` stops on Ctrl-C and on SIGTERM: starts the server as a terminal would (SIGINT at its default
disposition, which a background job of a script does not have), waits for /readyz, sends the signal, and prints the
seconds to exit and the exit code. Usage: python3 bench/device/serve_stop.py MODEL PORT [serve options...]"""
import signal, subprocess, sys, time, urllib.request

model, port, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
for sig in (signal.SIGINT, signal.SIGTERM):
    cmd = ["bash", ".device/on-device.sh", "serve", model, "--port", port, *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200: break
        except Exception: time.sleep(0.5)
    start = time.time(); p.send_signal(sig)
    try: code = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = "still running after 60 s"
        # native stacks of the hung process (on-device.sh execs the app: same pid), where gdb exists
        subprocess.run(f"gdb -p {p.pid} -batch -ex 'thread apply all bt 12' 2>&1 | grep -E '^#|^Thread' | head -150"
                       f" || grep -H . /proc/{p.pid}/task/*/wchan", shell=True, check=False)
        p.kill(); p.wait()
    print(f"{signal.Signals(sig).name}: exit {code} after {time.time() - start:.1f} s")
    print("  " + "\n  ".join(p.stdout.read().strip().splitlines()[-6:]))
