package api

// WaitForTokenWrites waits until the last-use writes the server started have finished.
func WaitForTokenWrites(s *Server) { s.auth.touches.Wait() }

// BarrierWaiters is the number of requests waiting for a token barrier.
func BarrierWaiters(s *Server) int64 { return s.auth.barriers.waiters.Load() }
