"""Background training: status transitions, queue, coalescing, leases, adoption after a crash."""
