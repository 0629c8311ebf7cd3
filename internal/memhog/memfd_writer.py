# Runs inside a container (python3 from the api image): writes zeros into a memfd until the
# container's memory cgroup is past its limit, at most argv[1] bytes and for at most argv[2] s.
# See doc.go for why this makes the kernel OOM-kill the container's PID 1 and not the writer.
import errno, os, sys, time
limit, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
try:
    fd = os.memfd_create("infralab-memhog")
except Exception as e:
    print("writer failed: memfd_create:", repr(e), flush=True)
    sys.exit(3)
print("writing", flush=True)
chunk = bytes(1 << 20)
written = 0
try:
    while written < limit:
        if time.monotonic() > deadline:
            print("writer failed: time cap reached after", written, "bytes", flush=True)
            sys.exit(4)
        written += os.write(fd, chunk)
except OSError as e:
    if e.errno == errno.ENOMEM:
        time.sleep(5)
    print("writer failed: write after", written, "bytes:", repr(e), flush=True)
    sys.exit(3)
print("wrote", written, "bytes and was not killed", flush=True)
