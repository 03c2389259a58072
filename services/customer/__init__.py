"""Customer master service: who the customers are (客户信息)."""
