# Copyright (c) mmlesion contributors. All rights reserved.
