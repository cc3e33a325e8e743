package api

// WaitForTokenWrites waits until the last-use writes the server started have finished.
func WaitForTokenWrites(s *Server) { s.auth.touches.Wait() }
